"""An unreachable storage endpoint fails in seconds, with the SDK's connection error.

The blob and queue SDKs' default retry (`ExponentialRetry`: 15 s, then 15+3, 15+9, each ±3 s,
after a 20 s connect timeout) held a refused connection for about 80 s before failing, so a CLI
command or a handler looked hung. `storage_clients` bounds it (`STORAGE_RETRY`); a transient
error is still retried, a dead endpoint is named at once. Docs: azure-storage-blob
`ExponentialRetry`, https://learn.microsoft.com/azure/storage/blobs/storage-retry-policy-python
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from azure.core.exceptions import ServiceRequestError

from devhost.azurite import DEV_KEY
from shared.adapters.blobs import blobs_for
from shared.adapters.queues import AzureQueue
from shared.adapters.tables import AzureTable
from shared.ports.messages import GroupsChanged

FAST_SECONDS = 10.0


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_storage() -> str:
    base = f"http://127.0.0.1:{closed_port()}/devstoreaccount1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
        f"BlobEndpoint={base};QueueEndpoint={base};TableEndpoint={base};"
    )


CALLS: dict[str, Callable[[str], object]] = {
    "blob": lambda storage: blobs_for(storage).put("x.txt", b"x", content_type="text/plain"),
    "queue": lambda storage: AzureQueue.from_connection(storage, "groups-changed").send(
        GroupsChanged(
            group_ids=("00000000-0000-0000-0000-00000000000a",),
            correlation_id="unreachable",
            received_at="2026-12-03T07:00:00Z",
        )
    ),
    "table": lambda storage: AzureTable.from_connection(storage, "findings").get("p", "r"),
}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_an_unreachable_endpoint_fails_fast_with_the_connection_error(service: str) -> None:
    start = time.monotonic()
    with pytest.raises(ServiceRequestError, match="Connection refused"):
        CALLS[service](unreachable_storage())
    assert time.monotonic() - start < FAST_SECONDS, service
