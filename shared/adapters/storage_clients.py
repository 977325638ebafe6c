"""How the Azure Storage adapters reach their service, and create what they use on first use.

One rule for queue, table and blob clients: a connection string (Azurite, local runs) or, in
Azure, the service URI with the one credential the composition root made for every storage
client (`shared.bootstrap.storage_credential`). And one rule for the queue, table or container
itself: created on first use, an existing one is fine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Self, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError

from shared.platform.settings import StorageConnection

Client = TypeVar("Client")


def storage_client(
    storage: str | StorageConnection,
    credential: TokenCredential | None,
    *,
    service: str,
    service_uri: Callable[[StorageConnection], str | None],
    from_connection_string: Callable[[str], Client],
    from_service_uri: Callable[[str, TokenCredential], Client],
) -> Client:
    """A client from a connection string, or from the `service` URI and `credential`."""
    if isinstance(storage, str):
        return from_connection_string(storage)
    if storage.connection_string:
        return from_connection_string(storage.connection_string)
    uri = service_uri(storage)
    if not uri:
        raise ValueError(f"storage connection has no {service} service URI")
    if credential is None:
        raise ValueError(
            "identity-based storage needs a credential: pass the one from "
            "shared.bootstrap.storage_credential(settings)"
        )
    return from_service_uri(uri, credential)


class CreatedOnFirstUse(Generic[Client]):
    """An adapter over one queue, table or container that creates it on first use."""

    connect: ClassVar[Callable[..., Any]]
    """The subclass's client maker: (storage, name, *, credential) -> its client."""

    def __init__(self, client: Client) -> None:
        self._client = client
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
        return cls(cls.connect(storage, name, credential=credential))

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
