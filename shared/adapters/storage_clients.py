"""How the Azure Storage adapters reach their service, and create what they use on first use.

One rule for queue, table and blob clients: a connection string (Azurite, local runs) or, in
Azure, the service URI with the one credential the composition root made for every storage
client (`credentials.storage_credential`). And one rule for the queue, table or container
itself: created on first use, an existing one is fine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError

from shared.platform.settings import StorageConnection

STORAGE_RETRY: dict[str, dict[str, Any]] = {
    service: {
        "retry_total": 3,
        "retry_connect": 1,
        "initial_backoff": 1,
        "increment_base": 2,
        "random_jitter_range": 1,
        "connection_timeout": 10,
    }
    for service in ("queue", "blob")
} | {"table": {"connection_timeout": 10}}
"""Client options per service. The blob and queue SDKs' default `ExponentialRetry` (15 s, then
15+3 and 15+9 s, each ±3 s, after a 20 s connect timeout) took about 80 s to report a refused
connection, so a CLI command or a handler looked hung: here a status error (500, 503) is still
tried 3 more times after about 1, 3 and 5 s, a connection error once more, and a connection
must open within 10 s (the tables SDK, whose retry is azure-core's, takes only the timeout).
The Functions host retries the whole message after that."""

Client = TypeVar("Client")
Made_co = TypeVar("Made_co", covariant=True)


class StorageClientType(Protocol[Made_co]):
    """`QueueClient`, `TableClient` or `ContainerClient`: each is made for one named queue,
    table or container as `(service_uri, name, credential=..., **options)` or
    `.from_connection_string(text, name, **options)` (their parameters' names differ)."""

    def __call__(self, *args: Any, **options: Any) -> Made_co: ...

    def from_connection_string(self, *args: Any, **options: Any) -> Made_co: ...


def storage_client(
    client_type: StorageClientType[Client],
    storage: str | StorageConnection,
    name: str,
    credential: TokenCredential | None,
    *,
    service: Literal["queue", "table", "blob"],
    **options: Any,
) -> Client:
    """A client for `name` from a connection string, or from the `service` URI and `credential`;
    `options` (after the service's `STORAGE_RETRY`) go to the client either way."""
    options = STORAGE_RETRY[service] | options
    if isinstance(storage, str):
        return client_type.from_connection_string(storage, name, **options)
    if storage.connection_string:
        return client_type.from_connection_string(storage.connection_string, name, **options)
    uri = storage.service_uri(service)
    if not uri:
        raise ValueError(f"storage connection has no {service} service URI")
    if credential is None:
        raise ValueError(
            "identity-based storage needs a credential: pass the one from "
            "shared.adapters.credentials.storage_credential(settings)"
        )
    return client_type(uri, name, credential=credential, **options)


class CreatedOnFirstUse(Generic[Client]):
    """An adapter over one queue, table or container that creates it on first use."""

    connect: ClassVar[Callable[..., Any]]
    """The subclass's client maker: (storage, name, *, credential) -> its client."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name
        self._ready = False

    @classmethod
    def from_connection(
        cls,
        storage: str | StorageConnection,
        name: str,
        *,
        credential: TokenCredential | None = None,
    ) -> Self:
        """The adapter over `name`, reached as `storage_client` says; nothing connects yet."""
        return cls(cls.connect(storage, name, credential=credential), name)

    @property
    def client(self) -> Client:
        return self._client

    def _create(self) -> None:
        raise NotImplementedError

    def _ensure(self) -> Client:
        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._create()
            self._ready = True
        return self._client
