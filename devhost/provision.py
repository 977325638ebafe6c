"""Create in Azurite what `infra/app/storage.bicep` creates in Azure: every queue with its
-poison twin, every table and the reports container, so a local stack looks like a provisioned
one (`license-guard preflight` checks exactly these)."""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from shared.ports.blobs import REPORTS_CONTAINER
from shared.ports.queues import QUEUE_NAMES, poison_name
from shared.ports.tables import TABLE_NAMES


def provision_storage(connection_string: str) -> None:
    """Idempotent: what exists already is left as it is."""
    queues = QueueServiceClient.from_connection_string(connection_string)
    for name in QUEUE_NAMES:
        for queue in (name, poison_name(name)):
            with contextlib.suppress(ResourceExistsError):
                queues.create_queue(queue)
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in TABLE_NAMES:
        tables.create_table_if_not_exists(table)
    with contextlib.suppress(ResourceExistsError):
        BlobServiceClient.from_connection_string(connection_string).create_container(
            REPORTS_CONTAINER
        )
