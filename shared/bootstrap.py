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

from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_auth import default_credential, graph_endpoint
from shared.adapters.queues import queues_for
from shared.adapters.tables import tables_for
from shared.logging import configure_logging
from shared.service.context import Services
from shared.settings import Settings

_lock = threading.Lock()
_services: Services | None = None


def build_services(env: Mapping[str, str] | None = None, *, credential: Any = None) -> Services:
    """Real adapters: Graph (or graphsim) over HTTP, Azure (or Azurite) queues and tables.

    Graph signs in with `credential` (an azure-identity credential), by default
    `DefaultAzureCredential(managed_identity_client_id=AZURE_CLIENT_ID)`: the app's
    user-assigned managed identity in Azure. `GRAPH_STATIC_TOKEN` (graphsim only) replaces it.
    """
    source = os.environ if env is None else env
    settings = Settings.from_env(source)
    token = settings.graph_static_token
    if token is None and credential is None:
        graph_endpoint(settings.graph_base_url)  # a URL of no Graph cloud fails before sign-in
        credential = default_credential(source)
    client = build_graph_client(settings.graph_base_url, static_token=token, credential=credential)
    return Services(
        settings=settings,
        directory=GraphDirectory(client),
        queues=queues_for(settings.storage_connection),
        tables=tables_for(settings.storage_connection),
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
