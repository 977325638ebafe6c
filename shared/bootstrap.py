"""The composition root: builds the service's dependencies once per worker, from settings.

Function handlers ask `services()` for what they need. Tests (and the dev host's demo) call
`use(...)` to register a `Services` built from fakes or local endpoints: dependencies are
swapped by registration, never by patching.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NoReturn, cast

from azure.core.credentials import TokenCredential

from shared.adapters.async_credential import AsyncTokenView
from shared.adapters.blobs import blobs_for, container_client
from shared.adapters.credentials import (
    identity_credential,
    storage_connection_credential,
    storage_credential,
)
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_auth import (
    MANAGED_IDENTITY_SETTING,
    default_credential,
    graph_endpoint,
    managed_identity_client_id,
)
from shared.adapters.graph_client import ResponseHook
from shared.adapters.graph_probe import GraphProbe
from shared.adapters.queues import queue_client, queues_for
from shared.adapters.tables import table_client, tables_for
from shared.fakes.blobs import InMemoryBlobStore
from shared.fakes.queues import in_memory_queues
from shared.fakes.tables import in_memory_tables
from shared.platform.logging import configure_logging
from shared.platform.settings import Settings, StorageConnection
from shared.ports.blobs import REPORTS_CONTAINER, BlobStore
from shared.ports.directory import Directory
from shared.ports.queues import QUEUE_NAMES, Queues, poison_name
from shared.ports.tables import TABLE_NAMES, Tables
from shared.service.services import NO_CRASHES, CrashPoints, Services, WorkerCaches, utc_now

_lock = threading.Lock()
_registered: Services | None = None
_worker: WorkerServices | None = None
_this_thread = threading.local()
_log = logging.getLogger(__name__)
STORAGE_CLIENT_ID_SETTING = "AzureWebJobsStorage__clientId"


def build_services(
    env: Mapping[str, str] | None = None,
    *,
    credential: Any = None,
) -> Services:
    """Real adapters: Graph (or graphsim) over HTTP, Azure (or Azurite) queues, tables, blobs.

    `credential` (an azure-identity credential) signs in to Graph and, in identity mode, to
    storage. Without it the worker's credentials come from `worker_credentials`: one
    synchronous `DefaultAzureCredential` shared by Graph and storage when both name the same
    identity (the deployed case). `GRAPH_STATIC_TOKEN` (graphsim only) replaces Graph's sign-in.
    One `Services`, one Graph client: for a command on one event loop (the CLI); the Functions
    worker's threads each get their own through `worker_services`.
    """
    return worker_services(env, credential=credential).for_this_thread()


class _NoGraph:
    """The directory of `intake_services`: that route calls no Graph; a call is a bug."""

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(f"Directory.{name}: the change-notification route has no Graph client")


_NO_GRAPH: Final = cast(Directory, _NoGraph())


@dataclass(frozen=True)
class WorkerServices:
    """What one Functions worker builds once and all its threads share, and how a thread gets
    its own Graph client.

    Handlers are synchronous (the host runs them in its thread pool) and each thread runs its
    invocations on its own event loop (`functions.running`), so a blocking storage call stalls
    only its own invocation. Thread-safe parts are shared: settings, the storage adapters (the
    Azure SDK's sync clients), the worker caches and the credentials (one per worker). Kiota's
    HTTP client is bound to the loop it first runs on, so each thread makes its own, signed in
    with the one `graph_credential`."""

    settings: Settings
    queues: Queues
    tables: Tables
    blobs: BlobStore
    graph_credential: Any
    """None with a static token (graphsim); else one credential for every thread's client."""
    caches: WorkerCaches = field(default_factory=WorkerCaches)
    clock: Callable[[], datetime] = utc_now
    """The services' clock (a benchmark may run the worker on a simulator's)."""

    def for_this_thread(self) -> Services:
        """A `Services` for the calling thread: a Graph client of its own, the rest shared."""
        client = build_graph_client(
            self.settings.graph_base_url,
            static_token=self.settings.graph_static_token,
            credential=self.graph_credential,
        )
        return self.with_directory(GraphDirectory(client))

    def with_directory(self, directory: Directory) -> Services:
        """A `Services` over the shared parts and this directory."""
        return Services(
            settings=self.settings,
            directory=directory,
            queues=self.queues,
            tables=self.tables,
            blobs=self.blobs,
            caches=self.caches,
            clock=self.clock,
        )


def worker_services(
    env: Mapping[str, str] | None = None, *, credential: Any = None
) -> WorkerServices:
    """`build_services`' parts, built once: settings, storage adapters, credentials.

    Graph's credential is made here, once, also where `worker_credentials` leaves it to the
    Graph client (storage on a connection string, Graph signed in): a synchronous
    `DefaultAzureCredential` as the threads' clients await it (`AsyncTokenView`), so the
    worker's threads share one token cache instead of making a credential each."""
    source = os.environ if env is None else env
    settings = Settings.from_env(source)
    if settings.graph_static_token is None:
        # a URL of no Graph cloud is refused (GraphEndpointError) before any credential is made
        graph_endpoint(settings.graph_base_url)
    if credential is None:
        graph_credential, shared_credential = worker_credentials(settings, source)
        if graph_credential is None and settings.graph_static_token is None:
            graph_id = managed_identity_client_id(source)
            graph_credential = AsyncTokenView(identity_credential(graph_id))
    else:
        graph_credential = shared_credential = credential
    storage = settings.storage_connection
    return WorkerServices(
        settings=settings,
        queues=queues_for(storage, credential=shared_credential),
        tables=tables_for(storage, credential=shared_credential),
        blobs=blobs_for(storage, credential=shared_credential),
        graph_credential=graph_credential,
    )


def worker_credentials(
    settings: Settings, env: Mapping[str, str]
) -> tuple[AsyncTokenView | None, TokenCredential | None]:
    """Graph's credential and storage's, one token cache for both when they can share one.

    - Graph on a static token (graphsim), or storage on a connection string (Azurite): each
      side as before: storage's `storage_credential` (None with a connection string), Graph's
      None (`worker_services` then makes the worker's one, or Graph uses the static token).
    - Both signed in, the same identity (``AZURE_CLIENT_ID`` and ``AzureWebJobsStorage__clientId``
      name the same user-assigned identity, or neither names one): ONE synchronous credential,
      `storage_credential`, which Graph sees through an `AsyncTokenView` (its token requests in
      a worker thread). One managed-identity call per scope and expiry, not one per client.
    - Both signed in as different identities: two synchronous credentials, as the settings ask
      (Graph's through its own `AsyncTokenView`), and one warning naming both settings. Not
      refused: a different identity per side is a valid (if unusual) setup, and refusing at
      start would stop a running deployment on upgrade.
    """
    storage = settings.storage_connection
    storage_side = storage_credential(settings)
    if settings.graph_static_token is not None or storage_side is None:
        return None, storage_side
    graph_id = managed_identity_client_id(env)
    storage_id = storage.managed_identity_client_id
    if (graph_id or "").lower() == (storage_id or "").lower():
        return AsyncTokenView(storage_side), storage_side
    _log.warning(
        "%s (Graph: %s) and %s (storage: %s) name different identities: two credentials, two "
        "token caches; set both to the same user-assigned identity's client id to share one",
        MANAGED_IDENTITY_SETTING,
        graph_id or "none, the default identity",
        STORAGE_CLIENT_ID_SETTING,
        storage_id or "none, the default identity",
    )
    return AsyncTokenView(identity_credential(graph_id)), storage_side


def _registered_or_worker() -> Services | WorkerServices:
    """The services registered with `use`, else this worker's (built on first use)."""
    global _worker  # noqa: PLW0603 - the one process-wide registry, guarded by a lock
    with _lock:
        if _registered is not None:
            return _registered
        if _worker is None:
            configure_logging()
            _worker = worker_services()
        return _worker


def logging_ready() -> None:
    """Logging as a worker's first `services()` configures it, for a handler that logs before
    it asks for services (a queue message it cannot read). Services given to `use` keep theirs."""
    with _lock:
        if _registered is None and _worker is None:
            configure_logging()


def services() -> Services:
    """The services of the calling thread: those registered with `use`, else this worker's
    (`worker_services`, built on first use) with the thread's own Graph client."""
    worker = _registered_or_worker()
    if isinstance(worker, Services):
        return worker
    mine: tuple[WorkerServices, Services] | None = getattr(_this_thread, "services", None)
    if mine is None or mine[0] is not worker:
        mine = (worker, worker.for_this_thread())
        _this_thread.services = mine
    return mine[1]


def intake_services() -> Services:
    """`services()` for the change-notification route, which only vets and enqueues (storage):
    the worker's settings, storage and caches, and no Graph client, so a thread answering
    Graph's notifications never builds one it does not use. Registered services as they are."""
    worker = _registered_or_worker()
    if isinstance(worker, Services):
        return worker
    return worker.with_directory(_NO_GRAPH)


def use(registered: Services | WorkerServices | None) -> None:
    """Register what handlers get: a `Services`, the same on every thread (tests: in-memory
    fakes, which no event loop binds); a `WorkerServices`, each thread its own Graph client
    (real adapters built by the caller, e.g. on a simulator's clock); or None: build them
    from settings on next use, as a new worker does."""
    global _registered, _worker
    with _lock:
        if isinstance(registered, WorkerServices):
            _registered, _worker = None, registered
        else:
            _registered, _worker = registered, None


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


# --------------------------------------------------------------------------- the CLI's wiring


class GraphSession:
    """A `Directory` over Graph for one CLI command, and the credential it signs in with (None
    with a static token): the command owns both and closes them with `aclose`."""

    def __init__(self, directory: GraphDirectory, credential: Any) -> None:
        self._graph = directory
        self.directory: Directory = directory
        self.credential = credential

    async def aclose(self) -> None:
        await self._graph.aclose()
        close = getattr(self.credential, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def graph_session(
    base_url: str,
    *,
    static_token: str | None,
    credential: Any = None,
    on_response: ResponseHook | None = None,
) -> GraphSession:
    """The directory a CLI command reads at `base_url`: with `static_token` (graphsim), else
    signed in with `credential`, by default `DefaultAzureCredential` (`az login`), made only
    after the URL is known to name a Graph cloud (GraphEndpointError when it does not).
    `on_response` sees every HTTP response (a benchmark counts requests with it)."""
    if static_token is None and credential is None:
        graph_endpoint(base_url)
        credential = default_credential(os.environ)
    client = build_graph_client(
        base_url, static_token=static_token, credential=credential, on_response=on_response
    )
    return GraphSession(GraphDirectory(client), credential if static_token is None else None)


async def close_services(built: Services) -> None:
    """Close what `build_services` opened that outlives a command: the Graph client's HTTP
    connections (the storage clients are synchronous and hold no pool to close)."""
    if isinstance(built.directory, GraphDirectory):
        await built.directory.aclose()


def graph_probe(base_url: str, *, static_token: str | None, credential: Any) -> GraphProbe:
    """Preflight's harmless GETs against Graph, through the service's own client."""
    return GraphProbe(base_url, static_token=static_token, credential=credential)


def reports_blob_store(storage: StorageConnection) -> BlobStore:
    """The reports container (the nightly history), for `report html --from-storage`: with a
    connection string, or in identity mode signed in with the service's storage credential."""
    return blobs_for(storage, credential=storage_connection_credential(storage))


def storage_probes(
    storage: StorageConnection, credential: TokenCredential | None
) -> list[tuple[str, Callable[[], object]]]:
    """Preflight's read of every queue (and -poison twin), table and container the app uses:
    a label and a call that raises the storage SDK's error when it cannot read it."""

    def read_table(name: str) -> Callable[[], object]:
        def read() -> object:
            pager = table_client(storage, name, credential=credential).query_entities(
                "PartitionKey eq 'license-guard-preflight'", results_per_page=1
            )
            return list(next(iter(pager.by_page()), []))

        return read

    probes: list[tuple[str, Callable[[], object]]] = []
    for name in QUEUE_NAMES:
        for queue in (name, poison_name(name)):
            client = queue_client(storage, queue, credential=credential)
            probes.append((f"queue {queue}", client.get_queue_properties))
    for table in TABLE_NAMES:
        probes.append((f"table {table}", read_table(table)))
    blobs = container_client(storage, REPORTS_CONTAINER, credential=credential)
    probes.append((f"container {REPORTS_CONTAINER}", blobs.get_container_properties))
    return probes


def preflight_storage_clients(
    storage: StorageConnection, credential: TokenCredential | None
) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    """Preflight's SDK clients by name, a table's and a queue's, for reads and peeks only:
    unlike the service's adapters they create nothing on first use."""
    return (
        lambda name: table_client(storage, name, credential=credential),
        lambda name: queue_client(storage, name, credential=credential),
    )
