"""Tell Entra License Guard that a directory sync cycle completed (Python twin of the .ps1).

Puts one SyncCompleted message on the ``sync-completed`` Storage queue, Base64-encoded as the
Functions queue trigger expects (``TextBase64EncodePolicy``; a raw JSON body would end up in
``sync-completed-poison``). Standalone: needs only the standard library and
``azure-storage-queue``, so it can run on the sync server without the rest of the repository.

    python send_sync_completed.py --tenant-id <tenant GUID> --sas "$SAS" \
        --queue-url https://<account>.queue.core.windows.net/sync-completed
    python send_sync_completed.py --connection-string "$CONN" --tenant-id <tenant GUID>

The SAS needs Add permission on this queue only. Exit status: 0 sent, 1 the send failed,
2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

QUEUE_NAME = "sync-completed"


def build_message(
    tenant_id: str, completed_at: datetime, source: str, correlation_id: str | None = None
) -> dict[str, object]:
    """The SyncCompleted wire format (see shared/messages.py), ready for json.dumps."""
    return {
        "type": "SyncCompleted",
        "version": 1,
        "tenantId": str(uuid.UUID(tenant_id)),
        "completedAt": completed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "correlationId": correlation_id or str(uuid.uuid4()),
    }


def _guid(text: str) -> str:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a GUID") from None
    return str(parsed)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z for UTC)")
    return moment


def _source(text: str) -> str:
    if not text.strip() or len(text) > 64 or not text.isprintable():
        raise argparse.ArgumentTypeError("source must be 1-64 printable characters")
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--connection-string", help="storage connection string (Azurite, tests)")
    where.add_argument("--queue-url", help="https://<account>.queue.core.windows.net/<queue>")
    parser.add_argument("--sas", help="SAS token with Add permission (with --queue-url)")
    parser.add_argument("--queue-name", default=QUEUE_NAME, help="with --connection-string")
    parser.add_argument("--tenant-id", required=True, type=_guid)
    parser.add_argument(
        "--completed-at", type=_moment, default=None, help="ISO 8601 with zone (default: now)"
    )
    parser.add_argument("--source", type=_source, default="entra-connect")
    parser.add_argument("--correlation-id", default=None, help="default: a new GUID")
    args = parser.parse_args(argv)
    if args.queue_url and not args.sas:
        parser.error("--queue-url needs --sas")
    if args.sas and not args.queue_url:
        parser.error("--sas goes with --queue-url")
    return args


def queue_client(args: argparse.Namespace) -> QueueClient:
    encode = TextBase64EncodePolicy()
    if args.connection_string:
        return QueueClient.from_connection_string(
            args.connection_string, args.queue_name, message_encode_policy=encode
        )
    return QueueClient.from_queue_url(
        args.queue_url, credential=args.sas.lstrip("?"), message_encode_policy=encode
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    message = build_message(
        args.tenant_id,
        args.completed_at or datetime.now(UTC),
        args.source,
        args.correlation_id,
    )
    text = json.dumps(message, separators=(",", ":"))
    try:
        with queue_client(args) as client:
            sent = client.send_message(text)
    except AzureError as error:
        sys.stderr.write(f"send_sync_completed: {type(error).__name__}: {error}\n")
        return 1
    sys.stdout.write(f"SyncCompleted sent as message {sent.id}: {text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
