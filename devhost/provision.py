"""Create in Azurite what `infra/app/storage.bicep` creates in Azure: its queues (with their
-poison twins, listed there), tables and blob containers, read from the template itself, so a
local stack looks like a provisioned one (`license-guard preflight` checks exactly these)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

STORAGE_TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "app" / "storage.bicep"


@dataclass(frozen=True)
class StorageNames:
    queues: tuple[str, ...]
    tables: tuple[str, ...]
    containers: tuple[str, ...]


def _string_array(template: str, variable: str) -> tuple[str, ...]:
    match = re.search(rf"^var\s+{variable}\s*=\s*\[(.*?)\]", template, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"{STORAGE_TEMPLATE.name}: no `var {variable} = [...]`")
    return tuple(re.findall(r"'([^']+)'", match.group(1)))


def storage_names(template: Path = STORAGE_TEMPLATE) -> StorageNames:
    """The names the Bicep template provisions (its `queueNames`, `tableNames` and
    `containerNames` variables; tests/infra checks them against the code's contracts)."""
    text = template.read_text(encoding="utf-8")
    return StorageNames(
        queues=_string_array(text, "queueNames"),
        tables=_string_array(text, "tableNames"),
        containers=_string_array(text, "containerNames"),
    )


def provision_storage(connection_string: str, names: StorageNames | None = None) -> None:
    """Idempotent: what exists already is left as it is."""
    names = names or storage_names()
    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in names.queues:
        with contextlib.suppress(ResourceExistsError):
            queues.create_queue(queue)
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in names.tables:
        tables.create_table_if_not_exists(table)
    blobs = BlobServiceClient.from_connection_string(connection_string)
    for container in names.containers:
        with contextlib.suppress(ResourceExistsError):
            blobs.create_container(container)
