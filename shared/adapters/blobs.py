"""`AzureBlobStore`: the `BlobStore` port over Azure Blob Storage.

One private container, `reports` (`REPORTS_CONTAINER`, created in infra/app/storage.bicep and,
when missing, on first use). Blob names are paths such as ``nightly/2024-05-01/summary.json``;
`list` and `delete_older_than` work on a name prefix, so a prefix per report kind gives each its
own retention.

`AzureBlobStore` is reached the same way as the queues and tables (`shared.platform.settings.
StorageConnection`): a connection string (Azurite, local runs), or in Azure the blob service URI
(``AzureWebJobsStorage__blobServiceUri``) with the managed identity, which holds Storage Blob Data
Owner at account scope; the credential is the one the composition root shares with the queues
and tables. Nothing connects until a method is called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import IO, TYPE_CHECKING

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from shared.adapters.storage_clients import storage_client
from shared.platform.settings import StorageConnection
from shared.ports.blobs import REPORTS_CONTAINER, BlobStore, aware_utc


def container_client(
    storage: str | StorageConnection,
    container: str = REPORTS_CONTAINER,
    *,
    credential: TokenCredential | None = None,
) -> ContainerClient:
    """A ContainerClient from a connection string, or the blob URI and `credential` (the
    composition root's one storage credential)."""
    return storage_client(ContainerClient, storage, container, credential, service="blob")


class AzureBlobStore:
    """`BlobStore` over one Azure Storage container (private; created on first use)."""

    def __init__(self, client: ContainerClient | Callable[[], ContainerClient]) -> None:
        self._make = client if callable(client) else (lambda: client)
        self._made: ContainerClient | None = None
        self._ready = False

    @classmethod
    def from_connection(
        cls,
        storage: str | StorageConnection,
        container: str = REPORTS_CONTAINER,
        *,
        credential: TokenCredential | None = None,
    ) -> AzureBlobStore:
        if isinstance(storage, StorageConnection) and not (
            storage.connection_string or storage.blob_service_uri
        ):  # identity settings without a blob URI: fail where a report is written, not at start
            return cls(lambda: container_client(storage, container, credential=credential))
        return cls(container_client(storage, container, credential=credential))

    @property
    def client(self) -> ContainerClient:
        """Made on first use: settings without a blob URI fail where a report is written."""
        if self._made is None:
            self._made = self._make()
        return self._made

    @property
    def container(self) -> str:
        return str(self.client.container_name)

    def _ensure(self) -> None:
        if self._ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self.client.create_container()  # no public access: private
        self._ready = True

    def put(self, name: str, data: bytes, *, content_type: str) -> None:
        self._upload(name, data, content_type)

    def put_file(self, name: str, handle: IO[bytes], *, content_type: str) -> None:
        self._upload(name, handle, content_type)

    def _upload(self, name: str, data: bytes | IO[bytes], content_type: str) -> None:
        self._ensure()
        self.client.upload_blob(
            name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def get(self, name: str) -> bytes | None:
        self._ensure()
        try:
            return bytes(self.client.download_blob(name).readall())
        except ResourceNotFoundError:
            return None

    def list(self, prefix: str = "") -> list[str]:
        self._ensure()
        return sorted(str(b) for b in self.client.list_blob_names(name_starts_with=prefix or None))

    def delete(self, name: str) -> None:
        self._ensure()
        with contextlib.suppress(ResourceNotFoundError):
            self.client.delete_blob(name, delete_snapshots="include")

    def delete_older_than(self, prefix: str, cutoff: datetime) -> int:
        self._ensure()
        limit = aware_utc(cutoff)
        deleted = 0
        for blob in self.client.list_blobs(name_starts_with=prefix or None):
            modified = blob.last_modified
            if modified is not None and aware_utc(modified) < limit:
                try:
                    self.client.delete_blob(blob.name, delete_snapshots="include")
                except ResourceNotFoundError:
                    continue
                deleted += 1
        return deleted


def blobs_for(
    storage: str | StorageConnection, *, credential: TokenCredential | None = None
) -> BlobStore:
    """The reports container in Azure Storage; no network call until first used."""
    return AzureBlobStore.from_connection(storage, REPORTS_CONTAINER, credential=credential)


if TYPE_CHECKING:

    def _azure_is_a_blob_store(store: AzureBlobStore) -> BlobStore:
        return store
