"""The composition root: builds the service's dependencies once per worker, from settings.

Function handlers ask `services()` for what they need. Tests (and the dev host's demo) call
`use(...)` to register a `Services` built from fakes or local endpoints: dependencies are
swapped by registration, never by patching.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential

from shared.adapters.blobs import blobs_for
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.queues import queues_for
from shared.adapters.tables import tables_for
from shared.fakes.blobs import InMemoryBlobStore
from shared.fakes.queues import in_memory_queues
from shared.fakes.tables import in_memory_tables
from shared.platform.logging import configure_logging
from shared.platform.settings import Settings, StorageConnection
from shared.ports.blobs import BlobStore
from shared.ports.directory import Directory
from shared.ports.queues import Queues
from shared.ports.tables import Tables
from shared.service.services import NO_CRASHES, CrashPoints, Services, utc_now

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
    directory = graph_directory(
        settings.graph_base_url,
        static_token=settings.graph_static_token,
        credential=credential,
        env=source,
    )
    storage = settings.storage_connection
    shared_credential = credential if credential is not None else storage_credential(settings)
    return Services(
        settings=settings,
        directory=directory,
        queues=queues_for(storage, credential=shared_credential),
        tables=tables_for(storage, credential=shared_credential),
        blobs=blobs_for(storage, credential=shared_credential),
    )


def graph_directory(
    base_url: str,
    *,
    static_token: str | None = None,
    credential: Any = None,
    env: Mapping[str, str] | None = None,
    page_size: int | None = None,
) -> GraphDirectory:
    """The Directory port over Graph (or graphsim) at `base_url`: the one place the URL is
    checked (before any sign-in) and the credential is made when none is given
    (`build_graph_client`). The caller closes it (`aclose`), not the credential it passed."""
    client = build_graph_client(base_url, static_token=static_token, credential=credential, env=env)
    if page_size is None:
        return GraphDirectory(client)
    return GraphDirectory(client, page_size=page_size)


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


def in_memory_services(
    settings: Settings,
    directory: Directory,
    *,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    queues: Queues | None = None,
    tables: Tables | None = None,
    blobs: BlobStore | None = None,
    crash_points: CrashPoints = NO_CRASHES,
) -> Services:
    """Services over in-memory queues, tables and blobs (tests, benchmarks, dry runs off
    Azure): the one other way the root wires the ports. `directory` is a fake or a
    `GraphDirectory` on graphsim; `queues`/`tables`/`blobs` replace a default when given."""
    now = clock or utc_now
    return Services(
        settings=settings,
        directory=directory,
        queues=queues if queues is not None else in_memory_queues(clock=monotonic),
        tables=tables if tables is not None else in_memory_tables(),
        blobs=blobs if blobs is not None else InMemoryBlobStore(now=now),
        clock=now,
        crash_points=crash_points,
    )
