"""The production Graph client: an azure-identity credential, scope and hosts from the URL.

These tests run the code path the deployed service runs (`build_graph_client(base_url,
credential=...)`, kiota's AzureIdentityAuthenticationProvider) against graphsim started with
`--token SECRET`, with `MintingCredential` (tests/credentials.py) in the credential's place.

National cloud hosts and their `https://<host>/.default` scope:
https://learn.microsoft.com/graph/deployments (Microsoft Graph national cloud deployments).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from graphsim.server import serve_in_thread
from shared.adapters.async_credential import AsyncTokenView, async_credential
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_auth import GraphEndpointError, graph_endpoint
from shared.bootstrap import build_services
from shared.ports.directory import DirectoryError
from tests.adapters.test_directory_contract import group_subscription
from tests.credentials import TEST_APP_ID, MintingCredential
from tests.graphsim.conftest import make_tenant
from tests.graphsim.receiver import receiver
from tests.python_run import run_module

SECRET = "graphsim-signing-secret-for-the-tests-0123456789"
GLOBAL_SCOPE = ("https://graph.microsoft.com/.default",)
SCHEDULES = (
    "SUBSCRIPTION_KEEPER_SCHEDULE",
    "SYNC_WATCH_SCHEDULE",
    "RECHECK_ERRORS_SCHEDULE",
    "POISON_WATCH_SCHEDULE",
    "RECONCILE_SCHEDULE",
)


@pytest.mark.parametrize(
    ("base_url", "host", "scope"),
    [
        (
            "https://graph.microsoft.com/v1.0",
            "graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
        (
            "https://graph.microsoft.us/v1.0",
            "graph.microsoft.us",
            "https://graph.microsoft.us/.default",
        ),
        (
            "https://dod-graph.microsoft.us/v1.0/",
            "dod-graph.microsoft.us",
            "https://dod-graph.microsoft.us/.default",
        ),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        (
            "HTTPS://Graph.Microsoft.US/v1.0",
            "graph.microsoft.us",
            "https://graph.microsoft.us/.default",
        ),
        # graphsim on loopback stands in for the global service
        ("http://127.0.0.1:8765/v1.0", "127.0.0.1", "https://graph.microsoft.com/.default"),
        ("http://localhost:9/v1.0", "localhost", "https://graph.microsoft.com/.default"),
        ("http://[::1]:8765/v1.0", "::1", "https://graph.microsoft.com/.default"),
        (
            "https://graph.microsoft.com/beta",
            "graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
        (
            "https://graph.microsoft.com/V1.0",
            "graph.microsoft.com",
            "https://graph.microsoft.com/.default",
        ),
    ],
)
def test_scope_and_allowed_hosts_follow_graph_base_url(
    base_url: str, host: str, scope: str
) -> None:
    endpoint = graph_endpoint(base_url)
    assert endpoint.scope == scope
    assert endpoint.allowed_hosts == [host]
    assert endpoint.base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("https://graph.microsoft.de/v1.0", "not a Microsoft Graph host"),  # retired cloud
        ("https://graph.contoso.example/v1.0", "not a Microsoft Graph host"),
        ("http://graph.microsoft.com/v1.0", "https only"),
        ("graph.microsoft.com/v1.0", "not an absolute http"),
        # Graph answers every call without its version 400 "Invalid version." (the README
        # names a cloud by its host): refused before, with the URL to use
        ("https://graph.microsoft.us", "no API version: use 'https://graph.microsoft.us/v1.0'"),
        ("https://graph.microsoft.com/", "no API version: use 'https://graph.microsoft.com/v1.0'"),
        ("https://graph.microsoft.com/v1", "API version 'v1' .*'https://graph.microsoft.com/v1.0'"),
    ],
)
def test_a_url_of_no_graph_cloud_is_refused_with_a_clear_error(base_url: str, says: str) -> None:
    with pytest.raises(GraphEndpointError, match=says):
        graph_endpoint(base_url)
    with pytest.raises(GraphEndpointError, match=says):
        build_graph_client(base_url, credential=MintingCredential(SECRET))


@pytest.mark.parametrize(
    "base_url",
    [
        "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.us/v1.0",
        "https://dod-graph.microsoft.us/v1.0",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
    ],
)
def test_the_client_builds_for_every_national_cloud_with_the_locked_sdk(base_url: str) -> None:
    """The issue's traceback: msgraph-core's default allowed hosts against kiota 1.16."""
    client = build_graph_client(base_url, credential=MintingCredential(SECRET))
    assert client.request_adapter.base_url == base_url


@pytest.fixture(scope="module")
def graphsim_url() -> Iterator[str]:
    with serve_in_thread(make_tenant(), token=SECRET) as url:
        yield url


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_a_call_requests_the_graph_scope_and_sends_the_token_graphsim_accepts(
    graphsim_url: str,
) -> None:
    credential = MintingCredential(SECRET)

    async def call(url: str) -> tuple[list[dict[str, object]], list[str]]:
        async with GraphDirectory(build_graph_client(graphsim_url, credential=credential)) as d:
            skus = await d.subscribed_skus()
            request = group_subscription(
                url, _soon(), resource="groups", change_type="updated", client_state="x" * 16
            )
            sub = await d.create_subscription(request)
            mine = [s.id for s in await d.subscriptions()]
            await d.delete_subscription(sub.id)
            return skus, [sub.id, *mine]

    with receiver() as rec:
        skus, ids = _run(call(rec.url))  # type: ignore[misc]
    assert len(skus) == 2
    assert credential.requests
    assert all(scopes == GLOBAL_SCOPE for scopes in credential.requests)
    assert len(credential.minted) == 1  # cached while valid, as azure-identity's are
    assert ids[0] in ids[1:]  # graphsim read our appid from the bearer token we sent


def _soon() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


def test_an_expired_token_is_refreshed_by_the_credential_on_the_next_call(
    graphsim_url: str,
) -> None:
    credential = MintingCredential(SECRET, lifetime=2)

    async def two_calls() -> tuple[int, int]:
        async with GraphDirectory(build_graph_client(graphsim_url, credential=credential)) as d:
            first = len(await d.subscribed_skus())
            deadline = credential.minted and time.time() + 2.2
            await asyncio.sleep(max(0.0, deadline - time.time()))
            second = len(await d.subscribed_skus())
            return first, second

    assert _run(two_calls()) == (2, 2)
    assert len(credential.minted) == 2
    assert credential.minted[0] != credential.minted[1]


def test_graph_refusing_the_token_is_a_clear_directory_error(graphsim_url: str) -> None:
    stale = MintingCredential(SECRET, lifetime=1, refresh=False)
    forged = MintingCredential("not-graphsims-secret-but-32-bytes-long")

    async def call(credential: MintingCredential, wait: float) -> DirectoryError:
        async with GraphDirectory(build_graph_client(graphsim_url, credential=credential)) as d:
            await credential.get_token(*GLOBAL_SCOPE)
            await asyncio.sleep(wait)
            with pytest.raises(DirectoryError) as caught:
                await d.subscribed_skus()
            return caught.value

    expired = _run(call(stale, 2.1))
    assert isinstance(expired, DirectoryError)
    assert expired.status == 401
    assert expired.code == "InvalidAuthenticationToken"
    assert "Graph refused the access token" in str(expired)
    assert "token is expired" in str(expired)
    bad = _run(call(forged, 0))
    assert isinstance(bad, DirectoryError)
    assert bad.status == 401
    assert "Access token validation failure" in str(bad)


def test_build_services_from_production_settings_signs_in_with_the_credential(
    graphsim_url: str, azurite: object
) -> None:
    env = {
        "AzureWebJobsStorage": azurite.connection_string,  # type: ignore[attr-defined]
        "TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "NOTIFICATION_URL": "https://guard.example/api/graph/notifications",
        "LIFECYCLE_NOTIFICATION_URL": "https://guard.example/api/graph/lifecycle",
        "CLIENT_STATE": "a-client-state-of-32-characters!",
        "GRAPH_BASE_URL": graphsim_url,  # no GRAPH_STATIC_TOKEN: the production path
        "AZURE_CLIENT_ID": TEST_APP_ID,
        **dict.fromkeys(
            (
                "SUBSCRIPTION_KEEPER_SCHEDULE",
                "SYNC_WATCH_SCHEDULE",
                "RECHECK_ERRORS_SCHEDULE",
                "POISON_WATCH_SCHEDULE",
                "RECONCILE_SCHEDULE",
            ),
            "0 0 0 1 1 *",
        ),
    }
    credential = MintingCredential(SECRET)
    services = build_services(env, credential=credential)
    assert services.settings.graph_static_token is None

    async def call() -> object:
        directory = services.directory
        assert isinstance(directory, GraphDirectory)
        try:
            return await directory.organization()
        finally:
            await directory.aclose()

    organization = _run(call())
    assert isinstance(organization, dict)
    assert organization["displayName"] == "Contoso (graphsim)"
    assert credential.requests == [GLOBAL_SCOPE]


def test_the_cli_without_a_token_signs_in_with_a_credential_and_fails_clearly() -> None:
    """`license-guard snapshot` with no --token takes DefaultAzureCredential; restricted to the
    Azure CLI credential with no `az` on PATH it cannot get a token, and says so (exit 2, one
    line) instead of the SDK's traceback. Nothing reaches the network: no token, no request."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "GRAPH_", "IDENTITY_"))
    }
    env |= {
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        "PATH": str(Path(sys.executable).parent),
    }
    done = run_module(
        "shared",
        "snapshot",
        "--graph-base-url",
        "https://graph.microsoft.us/v1.0",
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "no access token for Microsoft Graph" in done.stderr
    assert "AzureCliCredential: Azure CLI not found on path" in done.stderr


class SyncCredential:
    """A synchronous credential like azure-identity's: caches its token per scope; each miss
    waits for `release` (the identity endpoint's answer) and is recorded with its thread."""

    def __init__(self, *, wait: float = 5.0) -> None:
        self.release = threading.Event()
        self.wait = wait
        self.misses: list[tuple[tuple[str, ...], dict[str, Any], int]] = []
        self.cache: dict[tuple[str, ...], AccessToken] = {}
        self.closed = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if scopes in self.cache:
            return self.cache[scopes]
        self.misses.append((scopes, kwargs, threading.get_ident()))
        if not self.release.wait(self.wait):
            raise TimeoutError("nothing released the token request: the event loop was blocked")
        token = AccessToken(f"token-{len(self.misses)}", int(time.time()) + 3600)
        self.cache[scopes] = token
        return token

    def close(self) -> None:
        self.closed = True


def test_the_async_view_asks_the_sync_credential_off_the_event_loop() -> None:
    """The token request blocks until a coroutine on the loop releases it: on the loop's own
    thread it would time out (the loop blocked); in a worker thread it completes."""
    credential = SyncCredential()
    view = AsyncTokenView(credential)

    async def main() -> tuple[AccessToken, int]:
        async def release() -> None:
            await asyncio.sleep(0.05)
            credential.release.set()

        token, _ = await asyncio.gather(
            view.get_token(*GLOBAL_SCOPE, claims="c", enable_cae=True), release()
        )
        return token, threading.get_ident()

    token, loop_thread = asyncio.run(main())
    assert token.token == "token-1"
    ((scopes, options, thread),) = credential.misses
    assert scopes == GLOBAL_SCOPE
    assert options == {"claims": "c", "tenant_id": None, "enable_cae": True}  # kiota's kwargs
    assert thread != loop_thread


def test_a_burst_of_graph_calls_on_a_cold_cache_makes_one_token_request() -> None:
    credential = SyncCredential()
    view = AsyncTokenView(credential)

    async def burst() -> list[AccessToken]:
        calls = [asyncio.ensure_future(view.get_token(*GLOBAL_SCOPE)) for _ in range(8)]
        await asyncio.sleep(0.05)
        credential.release.set()
        return list(await asyncio.gather(*calls))

    tokens = asyncio.run(burst())
    assert {t.token for t in tokens} == {"token-1"}
    assert len(credential.misses) == 1


def test_the_async_view_closes_the_credential_it_views() -> None:
    credential = SyncCredential()

    async def use() -> None:
        async with AsyncTokenView(credential) as view:
            assert view.credential is credential

    asyncio.run(use())
    assert credential.closed


def test_graph_takes_async_credentials_as_they_are_and_sync_ones_through_the_view() -> None:
    minting = MintingCredential(SECRET)
    sync = SyncCredential()
    assert async_credential(minting) is minting
    assert async_credential(None) is None
    view = async_credential(sync)
    assert isinstance(view, AsyncTokenView)
    assert view.credential is sync
    assert async_credential(view) is view
