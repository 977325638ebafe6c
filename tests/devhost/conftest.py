"""Fixtures for the devhost tests: per-test queue names, a host factory and a thread-leak check."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devhost.azurite import AzuriteEndpoints
from devhost.host import DevHost
from tests.devhost import sample_app
from tests.leftover_threads import no_leftover_threads  # noqa: F401 - autouse fixture

# Small but realistic queue options; each test can override through `host_json`.
HOST_JSON: dict[str, Any] = {
    "version": "2.0",
    "extensions": {"queues": {"maxPollingInterval": "00:00:01", "maxDequeueCount": 5}},
}
YEARLY = "0 0 0 1 1 *"  # effectively never during a test


@pytest.fixture(autouse=True)
def _clean_sample_state() -> None:
    with sample_app.lock:
        sample_app.failed_attempts.clear()
        sample_app.timer_runs.clear()


@pytest.fixture
def queues() -> dict[str, str]:
    """Fresh queue names for this test (Azurite is shared by the whole session)."""
    tag = uuid.uuid4().hex[:10]
    return {
        "SAMPLE_IN_QUEUE": f"in-{tag}",
        "SAMPLE_OUT_QUEUE": f"out-{tag}",
        "SAMPLE_FAIL_QUEUE": f"fail-{tag}",
    }


@pytest.fixture
def settings(azurite: AzuriteEndpoints, queues: dict[str, str]) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "SAMPLE_SCHEDULE": YEARLY,
        **queues,
    }


HostFactory = Callable[..., DevHost]


@pytest.fixture
def make_host(settings: dict[str, str]) -> Iterator[HostFactory]:
    """Start a DevHost on the sample app (stopped at teardown); kwargs go to DevHost."""
    started: list[DevHost] = []

    def make(
        extra_settings: Mapping[str, str] | None = None,
        host_json: Mapping[str, Any] | None = None,
        app: Any = None,
        **kwargs: Any,
    ) -> DevHost:
        host = DevHost(
            app if app is not None else sample_app.app,
            {**settings, **(extra_settings or {})},
            host_json=HOST_JSON if host_json is None else host_json,
            **kwargs,
        )
        started.append(host)
        return host.start()

    yield make
    for host in started:
        host.stop()


def sender(azurite: AzuriteEndpoints, queue: str, *, base64: bool = True) -> QueueClient:
    """A producer that writes Base64, as the Functions queue trigger expects by default (or,
    `base64=False`, the text as it is); the queue is created unless the host already did."""
    client = QueueClient.from_connection_string(
        azurite.connection_string,
        queue,
        message_encode_policy=TextBase64EncodePolicy() if base64 else None,
    )
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def raw_contents(azurite: AzuriteEndpoints, queue: str) -> list[str]:
    """Every message's stored text (no decoding), without removing them ([] if no queue)."""
    client = QueueClient.from_connection_string(azurite.connection_string, queue)
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def decoded_contents(azurite: AzuriteEndpoints, queue: str) -> list[str]:
    client = QueueClient.from_connection_string(
        azurite.connection_string, queue, message_decode_policy=TextBase64DecodePolicy()
    )
    return [m.content for m in client.peek_messages(max_messages=32)]
