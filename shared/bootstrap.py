"""The composition root: builds the service's dependencies once per worker, from settings.

Function handlers ask `services()` for what they need. Tests (and the dev host's demo) call
`use(...)` to register a `Services` built from fakes or local endpoints: dependencies are
swapped by registration, never by patching.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import TokenCredential

from shared.adapters.blobs import BlobStore, blobs_for
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_auth import default_credential, graph_endpoint
from shared.adapters.queues import queues_for
from shared.adapters.tables import tables_for
from shared.logging import configure_logging
from shared.service.context import Services
from shared.settings import Settings, StorageConnection

_lock = threading.Lock()
_services: Services | None = None


def storage_credential(settings: Settings) -> TokenCredential | None:
    """The one credential all storage clients share in identity mode; None with a connection
    string. The only place it is made: one token cache, one managed-identity call per expiry.

    ``AzureWebJobsStorage__clientId`` (with ``__credential=managedidentity``) picks the
    user-assigned identity; elsewhere `DefaultAzureCredential` finds `az login` or the
    environment. It is synchronous like the storage clients; Graph's client accepts it too.
    """
    return storage_connection_credential(settings.storage_connection)


def storage_connection_credential(storage: StorageConnection) -> TokenCredential | None:
    """`storage_credential` for a bare StorageConnection (preflight checks storage without
    the other settings)."""
    if storage.connection_string:
        return None
    # imported and created only when asked for: never a credential at import time
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415

    return DefaultAzureCredential(managed_identity_client_id=storage.managed_identity_client_id)


def _report_blobs(
    storage: StorageConnection, credential: TokenCredential | None
) -> BlobStore | None:
    """The reports container when the settings name one (identity mode may omit the blob URI)."""
    if storage.connection_string or storage.blob_service_uri:
        return blobs_for(storage, credential=credential)
    return None


def build_services(
    env: Mapping[str, str] | None = None,
    *,
    credential: Any = None,
) -> Services:
    """Real adapters: Graph (or graphsim) over HTTP, Azure (or Azurite) queues, tables, blobs.

    `credential` (an azure-identity credential) signs in to Graph and, in identity mode, to
    storage. Without it, Graph uses `DefaultAzureCredential(managed_identity_client_id=
    AZURE_CLIENT_ID)` (azure.identity.aio: the app's user-assigned identity in Azure) and every
    storage client shares `storage_credential(settings)` (the synchronous twin, as the storage
    clients are synchronous). `GRAPH_STATIC_TOKEN` (graphsim only) replaces Graph's sign-in.
    """
    source = os.environ if env is None else env
    settings = Settings.from_env(source)
    token = settings.graph_static_token
    graph_credential = credential
    if token is None and graph_credential is None:
        graph_endpoint(settings.graph_base_url)  # a URL of no Graph cloud fails before sign-in
        graph_credential = default_credential(source)
    client = build_graph_client(
        settings.graph_base_url, static_token=token, credential=graph_credential
    )
    storage = settings.storage_connection
    shared_credential = credential if credential is not None else storage_credential(settings)
    return Services(
        settings=settings,
        directory=GraphDirectory(client),
        queues=queues_for(storage, credential=shared_credential),
        tables=tables_for(storage, credential=shared_credential),
        blobs=_report_blobs(storage, shared_credential),
    )


def services() -> Services:
    global _services  # noqa: PLW0603 - the one process-wide registry, guarded by a lock
    with _lock:
        if _services is None:
            configure_logging()
            _services = build_services()
        return _services


def use(registered: Services | None) -> None:
    """Register the services handlers get (None: build from settings on next use)."""
    global _services  # noqa: PLW0603
    with _lock:
        _services = registered
