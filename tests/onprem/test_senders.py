"""The on-premises senders of SyncCompleted: the PowerShell template and the Python script."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import azure.functions as func
import orjson
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, QueueSasPermissions, generate_queue_sas

from devhost.azurite import ACCOUNT, DEV_KEY, AzuriteEndpoints
from functions._queue import decode_as
from shared.adapters.queues import AzureQueue
from shared.messages import SyncCompleted, decode_message, encode_message

ONPREM = Path(__file__).resolve().parents[2] / "infra" / "onprem"
PS1 = ONPREM / "Send-SyncCompleted.ps1"
TENANT = "9b2f0c1e-0c5a-4a57-9a3e-6c1f0b0e8d11"


def _load_sender() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "send_sync_completed", ONPREM / "send_sync_completed.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sender = _load_sender()


def wire_keys() -> list[str]:
    msg = SyncCompleted(
        tenant_id=TENANT,
        completed_at="2026-03-01T07:30:00Z",
        source="entra-connect",
        correlation_id=str(uuid.uuid4()),
    )
    return list(orjson.loads(encode_message(msg)))


# --------------------------------------------------------------------------- PowerShell (text)


def ps1_template() -> dict[str, str]:
    """The keys and value expressions of the script's `$message = [ordered]@{ ... }` block."""
    text = PS1.read_text(encoding="utf-8")
    block = re.search(r"\$message\s*=\s*\[ordered\]@\{(.*?)\n\}", text, re.DOTALL)
    assert block, "the script builds its message as $message = [ordered]@{ ... }"
    entries = re.findall(r"^\s{4}(\w+)\s*=\s*(.+)$", block.group(1), re.MULTILINE)
    return dict(entries)


def test_the_powershell_template_has_the_wire_format_field_names_in_order() -> None:
    assert list(ps1_template()) == wire_keys()


def test_the_powershell_template_fixes_type_and_version() -> None:
    template = ps1_template()

    assert template["type"].strip() == "'SyncCompleted'"
    assert template["version"].strip() == "1"
    assert "ToUniversalTime()" in template["completedAt"]
    assert "'Z'" in template["completedAt"]  # UTC with a Z, as SyncCompleted requires
    assert "NewGuid()" in template["correlationId"]


def test_the_powershell_script_base64_encodes_and_posts_put_message_xml() -> None:
    text = PS1.read_text(encoding="utf-8")

    assert "[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))" in text
    assert "<QueueMessage><MessageText>$text</MessageText></QueueMessage>" in text
    assert re.search(r"Invoke-RestMethod -Method Post -Uri \$uri", text)
    assert '$uri = "$QueueUrl/messages"' in text


def test_the_powershell_script_documents_registration_and_holds_no_secret() -> None:
    text = PS1.read_text(encoding="utf-8")

    assert "Register-ScheduledTask" in text
    assert "Start-ADSyncSyncCycle" in text
    assert not re.search(r"sig=[A-Za-z0-9%]{10,}", text)
    assert "AccountKey=" not in text


# --------------------------------------------------------------------------- Python (Azurite)


@pytest.fixture
def queue(azurite: AzuriteEndpoints) -> Iterator[str]:
    name = f"sync-completed-{uuid.uuid4().hex[:10]}"
    client = QueueClient.from_connection_string(azurite.connection_string, name)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    yield name
    client.delete_queue()


def stored_texts(azurite: AzuriteEndpoints, queue: str) -> list[str]:
    """The messages as stored (no decode policy): what the Functions trigger receives."""
    client = QueueClient.from_connection_string(azurite.connection_string, queue)
    return [str(m.content) for m in client.peek_messages(max_messages=32)]


def received_message(azurite: AzuriteEndpoints, queue: str) -> SyncCompleted:
    (text,) = stored_texts(azurite, queue)
    message = decode_message(base64.b64decode(text, validate=True))
    assert isinstance(message, SyncCompleted)
    return message


def test_python_sender_with_a_connection_string_sends_a_valid_base64_sync_completed(
    azurite: AzuriteEndpoints, queue: str
) -> None:
    status = sender.main(
        [
            "--connection-string", azurite.connection_string,
            "--queue-name", queue,
            "--tenant-id", TENANT.upper(),
            "--completed-at", "2026-03-01T08:30:00+01:00",
            "--source", "cloud-sync",
            "--correlation-id", "run-42",
        ]
    )  # fmt: skip

    assert status == 0
    message = received_message(azurite, queue)
    assert message.tenant_id == TENANT
    assert message.completed_at == "2026-03-01T07:30:00Z"
    assert message.source == "cloud-sync"
    assert message.correlation_id == "run-42"


def test_python_sender_with_queue_url_and_an_add_only_sas(
    azurite: AzuriteEndpoints, queue: str
) -> None:
    sas = generate_queue_sas(
        ACCOUNT,
        queue,
        DEV_KEY,
        permission=QueueSasPermissions(add=True),
        expiry=datetime.now(UTC) + timedelta(minutes=5),
    )
    url = f"http://{azurite.host}:{azurite.queue_port}/{ACCOUNT}/{queue}"
    before = datetime.now(UTC).replace(microsecond=0)

    assert sender.main(["--queue-url", url, "--sas", "?" + sas, "--tenant-id", TENANT]) == 0

    message = received_message(azurite, queue)
    sent_at = datetime.fromisoformat(message.completed_at.replace("Z", "+00:00"))
    assert before <= sent_at <= datetime.now(UTC)
    assert message.source == "entra-connect"
    assert uuid.UUID(message.correlation_id)


def test_what_the_python_sender_stores_is_base64_not_raw_json(
    azurite: AzuriteEndpoints, queue: str
) -> None:
    sender.main(["--connection-string", azurite.connection_string, "--queue-name", queue,
                 "--tenant-id", TENANT])  # fmt: skip

    (text,) = stored_texts(azurite, queue)
    assert not text.lstrip().startswith("{")
    assert isinstance(decode_message(base64.b64decode(text)), SyncCompleted)
    received = AzureQueue.from_connection(azurite.connection_string, queue).receive()
    assert isinstance(received[0].message, SyncCompleted)  # the app's own queue adapter agrees


def test_the_sync_completed_function_accepts_what_the_python_sender_stores(
    azurite: AzuriteEndpoints, queue: str
) -> None:
    sender.main(["--connection-string", azurite.connection_string, "--queue-name", queue,
                 "--tenant-id", TENANT])  # fmt: skip

    (text,) = stored_texts(azurite, queue)
    # The host hands the function the Base64-decoded body (host.json messageEncoding base64).
    body = base64.b64decode(text)
    assert decode_as(func.QueueMessage(body=body), SyncCompleted).tenant_id == TENANT


def test_python_and_powershell_senders_write_the_same_fields() -> None:
    built = sender.build_message(TENANT, datetime(2026, 3, 1, 7, 30, tzinfo=UTC), "entra-connect")

    assert list(built) == wire_keys() == list(ps1_template())
    assert isinstance(decode_message(json.dumps(built)), SyncCompleted)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--tenant-id", "not-a-guid", "--connection-string", "x"], "is not a GUID"),
        (
            [
                "--tenant-id",
                TENANT,
                "--connection-string",
                "x",
                "--completed-at",
                "2026-03-01T07:30",
            ],
            "has no time zone",
        ),
        (
            ["--tenant-id", TENANT, "--queue-url", "https://a.queue.core.windows.net/q"],
            "needs --sas",
        ),
        (["--tenant-id", TENANT], "one of the arguments"),
    ],
)
def test_python_sender_rejects_bad_arguments_with_status_2(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sender.main(args)

    assert exit_info.value.code == 2
    assert problem in capsys.readouterr().err


def test_python_sender_runs_standalone_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ONPREM / "send_sync_completed.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ONPREM,
    )

    assert result.returncode == 0
    assert "--tenant-id" in result.stdout
