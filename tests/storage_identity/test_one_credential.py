"""One credential per worker: Graph and storage, signed in as one identity, share one token cache.

The deployed app names the same user-assigned identity twice (infra/app/api.bicep:
``AZURE_CLIENT_ID`` for Graph, ``AzureWebJobsStorage__clientId`` for storage). Here
`build_services` makes its own `DefaultAzureCredential` (nothing passed in) against a
managed-identity endpoint of ours (identity_endpoint.py), graphsim (``--token``) and Azurite
(``--oauth basic``, HTTPS), and the endpoint counts the token requests: one per scope, however
many clients (a Graph client and 15 storage clients) and calls, and however many threads run
the app's handlers at once (each with a Graph client of its own).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator

import pytest
from azure.functions.timer import TimerRequest
from azure.identity import DefaultAzureCredential

from devhost.azurite import AzuriteEndpoints
from graphsim.server import serve_in_thread
from shared.adapters.async_credential import AsyncTokenView
from shared.adapters.graph import GraphDirectory
from shared.adapters.graph_auth import GraphEndpointError
from shared.bootstrap import (
    build_services,
    services,
    use,
    worker_credentials,
    worker_services,
)
from shared.platform.settings import Settings
from shared.service.services import Services
from tests.graphsim.conftest import make_tenant
from tests.invocation import indexed_functions, invocation_context
from tests.storage_identity.identity_endpoint import IdentityEndpoint, identity_endpoint
from tests.storage_identity.test_storage_by_identity import (
    CLIENT_ID,
    azurite_env,
    identity_env,
    storage_clients,
    sync_completed,
)
from tests.storage_identity.tls import TlsFiles

# One xdist worker runs the module, so its HTTPS Azurite (module-scoped) starts once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("one-credential")]

SECRET = "graphsim-signing-secret-for-one-credential-0123456789"
GRAPH = "https://graph.microsoft.com"
STORAGE = "https://storage.azure.com"
OTHER_CLIENT_ID = "5a1c6a7e-0000-4000-8000-0000000000c2"
MANAGED_IDENTITY_ELSEWHERE = (
    "IDENTITY_SERVER_THUMBPRINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
)


@pytest.fixture(scope="module")
def graphsim_url() -> Iterator[str]:
    with serve_in_thread(make_tenant(), token=SECRET) as url:
        yield url


@pytest.fixture
def managed_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    """The process environment Azure Functions gives a worker: its identity endpoint, and
    `DefaultAzureCredential` held to managed identity (no `az login` fallback in tests)."""
    for name in MANAGED_IDENTITY_ELSEWHERE:
        monkeypatch.delenv(name, raising=False)
    with identity_endpoint(SECRET) as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.header)
        monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
        yield endpoint


def production_env(
    azurite: AzuriteEndpoints, graphsim_url: str, graph_client_id: str
) -> dict[str, str]:
    """Identity storage and Graph signed in (no static token), as Bicep writes them."""
    env = azurite_env(azurite) | {"GRAPH_BASE_URL": graphsim_url}
    del env["GRAPH_STATIC_TOKEN"]
    return env | {"AZURE_CLIENT_ID": graph_client_id}


def use_graph_and_storage(svc: Services) -> None:
    """A burst of concurrent Graph reads on a cold cache, then every kind of storage call."""

    async def graph() -> list[object]:
        directory = svc.directory
        assert isinstance(directory, GraphDirectory)
        try:
            return list(
                await asyncio.gather(
                    *(directory.organization() for _ in range(4)), directory.subscribed_skus()
                )
            )
        finally:
            await directory.aclose()

    answers = asyncio.run(graph())
    assert answers[0]["displayName"] == "Contoso (graphsim)"  # type: ignore[index]
    assert len(answers[-1]) == 2  # type: ignore[arg-type]
    svc.queues.sync_completed.send(sync_completed())
    for message in svc.queues.sync_completed.receive():
        svc.queues.sync_completed.delete(message)
    svc.tables.findings.upsert("one-credential", "row", {"n": 1})
    assert len(svc.tables.findings.query("one-credential")) == 1
    svc.blobs.put("one-credential/check.txt", b"ok", content_type="text/plain")
    assert svc.blobs.get("one-credential/check.txt") == b"ok"


@pytest.fixture
def deployed(
    azurite_oauth: AzuriteEndpoints,
    trust_test_ca: TlsFiles,
    graphsim_url: str,
    managed_identity: IdentityEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> Callable[[str], Services]:
    """`build_services` as a deployed worker runs it, Graph's identity named by the test;
    the composition root's warnings captured."""
    caplog.set_level(logging.WARNING, logger="shared.bootstrap")
    return lambda graph_client_id: build_services(
        production_env(azurite_oauth, graphsim_url, graph_client_id)
    )


def test_one_identity_makes_one_credential_and_one_token_request_per_scope(
    deployed: Callable[[str], Services],
    managed_identity: IdentityEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = deployed(CLIENT_ID.upper())
    credentials = {id(client.credential): client.credential for client in storage_clients(svc)}
    assert len(credentials) == 1
    assert isinstance(next(iter(credentials.values())), DefaultAzureCredential)

    use_graph_and_storage(svc)

    # one identity, one token cache: Graph's five calls and the 15 storage clients' calls made
    # one token request per scope (the client id compared without regard to case, as a GUID)
    assert sorted(managed_identity.requests) == [(GRAPH, CLIENT_ID), (STORAGE, CLIENT_ID)]
    assert not [r for r in caplog.records if r.name == "shared.bootstrap"]


def test_two_identities_keep_two_credentials_and_warn_naming_both_settings(
    deployed: Callable[[str], Services],
    managed_identity: IdentityEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = deployed(OTHER_CLIENT_ID)

    use_graph_and_storage(svc)

    # each side signs in as the identity its setting names, still once per scope
    assert sorted(managed_identity.requests) == [
        (GRAPH, OTHER_CLIENT_ID),
        (STORAGE, CLIENT_ID),
    ]
    (warning,) = [r for r in caplog.records if r.name == "shared.bootstrap"]
    assert warning.levelno == logging.WARNING
    text = warning.getMessage()
    assert "AZURE_CLIENT_ID" in text
    assert "AzureWebJobsStorage__clientId" in text
    assert OTHER_CLIENT_ID in text
    assert CLIENT_ID in text


AZURE_URIS = (
    "https://acct.queue.core.windows.net",
    "https://acct.table.core.windows.net",
    "https://acct.blob.core.windows.net",
)


def signed_in_env(**extra: str) -> dict[str, str]:
    env = identity_env(*AZURE_URIS) | {"GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0"}
    del env["GRAPH_STATIC_TOKEN"]
    return env | extra


def test_graph_sees_the_storage_credential_through_the_view() -> None:
    """The wiring itself, with no network call: Graph's credential is a view of storage's."""
    env = signed_in_env(AZURE_CLIENT_ID=f" {CLIENT_ID} ")
    graph, storage = worker_credentials(Settings.from_env(env), env)
    assert isinstance(storage, DefaultAzureCredential)
    assert isinstance(graph, AsyncTokenView)
    assert graph.credential is storage


@pytest.mark.parametrize(
    "extra",
    [
        {"GRAPH_STATIC_TOKEN": "graphsim", "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"},
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
    ],
    ids=["static-token", "connection-string"],
)
def test_graphsim_and_azurite_paths_are_unchanged(extra: dict[str, str]) -> None:
    """A static token needs no Graph credential; a connection string none for storage; in
    either case Graph's is left to `build_graph_client` (its static token or own credential)."""
    env = signed_in_env(AZURE_CLIENT_ID=CLIENT_ID, **extra)
    graph, storage = worker_credentials(Settings.from_env(env), env)
    assert graph is None
    assert (storage is None) == ("AzureWebJobsStorage" in extra)


def test_storage_on_a_connection_string_still_makes_one_graph_credential_per_worker() -> None:
    """Where `worker_credentials` leaves Graph's credential to its client, the worker makes it
    once, so every thread's Graph client shares it (no network call here)."""
    env = signed_in_env(AZURE_CLIENT_ID=CLIENT_ID, AzureWebJobsStorage="UseDevelopmentStorage=true")
    worker = worker_services(env)

    assert isinstance(worker.graph_credential, AsyncTokenView)
    assert isinstance(worker.graph_credential.credential, DefaultAzureCredential)
    first, second = worker.for_this_thread(), worker.for_this_thread()
    assert first.directory is not second.directory
    assert first.queues is second.queues


def test_a_url_of_no_graph_cloud_is_refused_before_any_credential() -> None:
    env = signed_in_env(GRAPH_BASE_URL="https://graph.contoso.example/v1.0")
    with pytest.raises(GraphEndpointError, match="not a Microsoft Graph host"):
        build_services(env)


THREADS = 3


def test_concurrent_invocations_get_a_graph_client_each_and_share_the_one_credential(
    azurite_oauth: AzuriteEndpoints,
    trust_test_ca: TlsFiles,
    graphsim_url: str,
    managed_identity: IdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sync watch (a Graph read, storage reads and writes) on three of the host's pool
    threads at once: each thread's job runs on its own event loop with its own Graph client,
    the storage clients are the worker's, and one credential serves them all (Graph asks it
    once: its threads share one `AsyncTokenView`)."""
    for name, value in production_env(azurite_oauth, graphsim_url, CLIENT_ID).items():
        monkeypatch.setenv(name, value)
    sync_watch = indexed_functions()["sync_watch"].get_user_function()
    start = threading.Barrier(THREADS)
    seen: dict[int, Services] = {}
    failures: list[BaseException] = []

    def invocation(n: int) -> None:
        try:
            start.wait(timeout=30)
            sync_watch(TimerRequest(past_due=False), context=invocation_context("sync_watch"))
            seen[n] = services()  # what this thread's invocation ran with
        except BaseException as error:  # reported by the test thread below
            failures.append(error)

    use(None)
    try:
        threads = [threading.Thread(target=invocation, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        use(None)

    assert not failures, failures
    assert len(seen) == THREADS
    directories = {id(svc.directory) for svc in seen.values()}
    assert len(directories) == THREADS  # a Graph client per thread (each bound to its loop)
    assert all(isinstance(svc.directory, GraphDirectory) for svc in seen.values())
    assert len({id(svc.tables) for svc in seen.values()}) == 1  # the storage clients are shared
    assert len({id(svc.caches) for svc in seen.values()}) == 1
    credentials = {id(c.credential) for svc in seen.values() for c in storage_clients(svc)}
    assert len(credentials) == 1
    graph_requests = [r for r in managed_identity.requests if r[0] == GRAPH]
    assert graph_requests == [(GRAPH, CLIENT_ID)]  # three clients, one credential, one token
    assert {r for r in managed_identity.requests if r[0] == STORAGE} == {(STORAGE, CLIENT_ID)}
