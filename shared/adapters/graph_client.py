"""`build_graph_client`: a msgraph-sdk client for one Graph base URL, signed in once.

The client talks to `base_url` (Graph in any national cloud, or graphsim on loopback) with either
a static bearer token (graphsim) or an azure-identity credential (`DefaultAzureCredential`:
managed identity in Azure, `az login` on a laptop), whose scope and allowed hosts come from the
base URL (`shared.adapters.graph_auth`). Nothing here creates a credential or a connection at
import time.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.authentication import AzureIdentityAuthenticationProvider
from msgraph_core.middleware import GraphTelemetryHandler

from shared.adapters.async_credential import async_credential
from shared.adapters.graph_auth import default_credential, graph_endpoint

ResponseHook = Callable[[httpx.Response], Awaitable[None]]
"""An httpx response event hook: awaited with each response the Graph client receives."""


class GraphRetryHandler(RetryHandler):
    """Kiota's retry handler, also reading a fractional Retry-After. Graph may send one
    (`Retry-After: 2.128`, learn.microsoft.com/graph/throttling); kiota reads only whole
    seconds or a date and otherwise takes its own ~3-4 s backoff, which retries before the
    time Graph named and is throttled again."""

    def _parse_retry_after(self, retry_after: str) -> float | None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return super()._parse_retry_after(retry_after)


def graph_http_client() -> httpx.AsyncClient:
    """Graph's default middleware (as `GraphClientFactory.create_with_default_middleware`),
    its retry handler swapped for `GraphRetryHandler`."""
    middleware = [
        GraphRetryHandler(m.options) if isinstance(m, RetryHandler) else m
        for m in KiotaClientFactory.get_default_middleware(None)
    ]
    middleware.append(GraphTelemetryHandler())
    client: httpx.AsyncClient = GraphClientFactory.create_with_custom_middleware(middleware)
    return client


class StaticTokenAuthenticationProvider(AnonymousAuthenticationProvider):
    """Adds a fixed `Authorization: Bearer …` header (graphsim, local development)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def authenticate_request(
        self,
        request: RequestInformation,
        additional_authentication_context: dict[str, Any] | None = None,
    ) -> None:
        request.headers.try_add("Authorization", f"Bearer {self._token}")


def build_graph_client(
    base_url: str,
    *,
    static_token: str | None = None,
    credential: Any = None,
    env: Mapping[str, str] | None = None,
    on_response: ResponseHook | None = None,
) -> GraphServiceClient:
    """A GraphServiceClient for `base_url` (settings' GRAPH_BASE_URL, e.g.
    `https://graph.microsoft.com/v1.0`, a national cloud's, or `http://127.0.0.1:8765/v1.0` for
    graphsim).

    Authentication: `static_token` as a bearer token (graphsim), else `credential` (an
    azure-identity credential, sync or async; the caller owns and closes it; a sync one is asked
    for its token in a worker thread, `AsyncTokenView`, never on the event loop), else a new
    `DefaultAzureCredential` (`shared.adapters.graph_auth.default_credential`, configured from
    `env`, by default the process environment). The URL is checked first, so a URL of no Graph
    cloud fails (GraphEndpointError, a ValueError) before any credential is made. The token is
    requested for `https://<host>/.default` and attached only to the base URL's host. The HTTP
    client carries Graph's default middleware (`graph_http_client`), so Graph's retry handler
    is in place (one that also reads a fractional Retry-After). `on_response`, when given, is
    called with every HTTP response (httpx's response event hook): what a benchmark counts
    requests with.
    """
    auth: AnonymousAuthenticationProvider | AzureIdentityAuthenticationProvider
    if static_token is not None:
        auth = StaticTokenAuthenticationProvider(static_token)
    else:
        endpoint = graph_endpoint(base_url)
        if credential is None:
            credential = default_credential(os.environ if env is None else env)
        auth = AzureIdentityAuthenticationProvider(
            async_credential(credential),
            scopes=[endpoint.scope],
            allowed_hosts=endpoint.allowed_hosts,
        )
    http_client = graph_http_client()
    if on_response is not None:
        http_client.event_hooks["response"].append(on_response)
    adapter = GraphRequestAdapter(auth, client=http_client)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
