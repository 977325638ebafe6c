"""Storage by identity: the service URIs and one shared credential, against Azurite over HTTPS.

In Azure the app reaches storage with ``AzureWebJobsStorage__queueServiceUri`` /
``__tableServiceUri`` / ``__blobServiceUri``, ``__credential=managedidentity`` and ``__clientId``
(infra/app/api.bicep); shared-key access is off. These tests run that exact configuration through
`build_services` against Azurite started with ``--oauth basic`` over HTTPS, with a credential of
ours that mints tokens. Azure Storage takes Entra tokens for the resource
``https://storage.azure.com`` ("Authorize access to blobs using Microsoft Entra ID",
https://learn.microsoft.com/azure/storage/blobs/authorize-access-azure-active-directory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import DefaultAzureCredential
from azure.storage.queue import QueueClient

from devhost.azurite import AzuriteEndpoints
from shared.adapters.blobs import AzureBlobStore, blobs_for
from shared.adapters.credentials import storage_credential
from shared.adapters.graph_auth import graph_endpoint
from shared.adapters.queues import AzureQueue, queues_for
from shared.adapters.tables import AzureTable, tables_for
from shared.bootstrap import build_services
from shared.cli.preflight_checks import FAIL, Target, storage_checks
from shared.platform.settings import Settings, StorageConnection
from shared.ports.messages import SyncCompleted
from shared.ports.queues import QUEUE_NAMES
from shared.ports.tables import TABLE_NAMES
from shared.service.services import Services
from tests.settings_env import SCHEDULE_ENV, WEBHOOK_ENV
from tests.storage_identity.minting import STORAGE_SCOPE, TEST_TENANT, MintingStorageCredential
from tests.storage_identity.tls import TlsFiles

STORAGE_RESOURCES = 2 * len(QUEUE_NAMES) + len(TABLE_NAMES) + 1
"""Each work queue and its poison twin, each table, the reports container (5 + 5, 6, 1)."""

# One xdist worker runs the module, so its HTTPS Azurite (module-scoped) starts once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("storage-by-identity")]

BASE_ENV = {
    "TENANT_ID": TEST_TENANT,
    **WEBHOOK_ENV,
    **SCHEDULE_ENV,
    # Graph is not called here; a static token keeps its client off the credential path.
    "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",
    "GRAPH_STATIC_TOKEN": "not-used-by-these-tests",
}
CLIENT_ID = "5a1c6a7e-0000-4000-8000-0000000000c1"


def identity_env(queue: str, table: str, blob: str) -> dict[str, str]:
    """The app settings Bicep writes for identity-based storage (no connection string)."""
    return BASE_ENV | {
        "AzureWebJobsStorage__queueServiceUri": queue,
        "AzureWebJobsStorage__tableServiceUri": table,
        "AzureWebJobsStorage__blobServiceUri": blob,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    }


def azurite_env(e: AzuriteEndpoints) -> dict[str, str]:
    return identity_env(e.queue_service_uri, e.table_service_uri, e.blob_service_uri)


def storage_clients(svc: Services) -> list[Any]:
    """Every storage SDK client the services hold: 8 queues, 6 tables, the reports container."""
    queues = [*svc.queues.all(), *svc.queues.poison.values()]
    tables = [getattr(svc.tables, name) for name in svc.tables.__dataclass_fields__]
    stores: list[Any] = [*queues, *tables, svc.blobs]
    assert all(isinstance(s, AzureQueue | AzureTable | AzureBlobStore) for s in stores)
    return [s.client for s in stores]


def sync_completed() -> SyncCompleted:
    return SyncCompleted(
        tenant_id=TEST_TENANT,
        completed_at="2026-03-01T07:30:00Z",
        source="identity-test",
        correlation_id="storage-by-identity",
    )


def test_queues_tables_and_blobs_work_by_identity_with_one_shared_credential(
    azurite_oauth: AzuriteEndpoints, trust_test_ca: TlsFiles
) -> None:
    credential = MintingStorageCredential()
    svc = build_services(azurite_env(azurite_oauth), credential=credential)
    assert svc.settings.storage_connection.connection_string is None  # no key anywhere
    msg = sync_completed()

    svc.queues.sync_completed.send(msg)
    received = svc.queues.sync_completed.receive()
    svc.queues.sync_completed.delete(received[0])
    etag = svc.tables.findings.upsert("identity", "row-1", {"severity": "error", "count": 2})
    found = svc.tables.findings.query("identity")
    assert svc.blobs is not None
    svc.blobs.put("identity/check.json", b'{"ok":true}', content_type="application/json")
    downloaded = svc.blobs.get("identity/check.json")

    assert [r.message for r in received] == [msg]
    assert svc.queues.sync_completed.approximate_count() == 0
    assert [(e.row_key, e.fields, e.etag) for e in found] == [
        ("row-1", {"severity": "error", "count": 2}, etag)
    ]
    assert downloaded == b'{"ok":true}'
    # every token was asked for Azure Storage's scope, and the one credential served all clients
    assert credential.scopes_requested
    assert set(credential.scopes_requested) == {(STORAGE_SCOPE,)}
    clients = storage_clients(svc)
    assert len(clients) == STORAGE_RESOURCES
    assert all(client.credential is credential for client in clients)


def test_the_composition_root_makes_one_credential_for_every_storage_client() -> None:
    """Without one passed in, `build_services` makes exactly one (no network call yet)."""
    env = identity_env(
        "https://acct.queue.core.windows.net",
        "https://acct.table.core.windows.net",
        "https://acct.blob.core.windows.net",
    )

    svc = build_services(env)

    credentials = {id(client.credential): client.credential for client in storage_clients(svc)}
    assert len(credentials) == 1
    (only,) = credentials.values()
    assert isinstance(only, DefaultAzureCredential)


def test_a_connection_string_needs_no_credential() -> None:
    settings = Settings.from_env(BASE_ENV | {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})

    assert storage_credential(settings) is None


@pytest.mark.parametrize(
    "make",
    [
        queues_for,
        tables_for,
        blobs_for,
    ],
    ids=["queues", "tables", "blobs"],
)
def test_identity_mode_without_a_credential_is_refused_before_any_call(
    make: Callable[[StorageConnection], object],
) -> None:
    """Nothing but the composition root makes a credential, so a missing one is a clear error."""
    storage = StorageConnection(
        queue_service_uri="https://acct.queue.core.windows.net",
        table_service_uri="https://acct.table.core.windows.net",
        blob_service_uri="https://acct.blob.core.windows.net",
    )

    with pytest.raises(ValueError, match="identity-based storage needs a credential"):
        make(storage)


def test_a_token_for_another_audience_is_refused_with_a_clear_error(
    azurite_oauth: AzuriteEndpoints, trust_test_ca: TlsFiles
) -> None:
    """A token for another resource (here Azure Resource Manager) is not a storage token."""
    credential = MintingStorageCredential(audience="https://management.azure.com")
    svc = build_services(azurite_env(azurite_oauth), credential=credential)
    blobs = svc.blobs
    assert blobs is not None
    calls: dict[str, Callable[[], object]] = {
        "queue": lambda: svc.queues.sync_completed.send(sync_completed()),
        "table": lambda: svc.tables.findings.upsert("identity", "denied", {"n": 1}),
        "blob": lambda: blobs.put("identity/denied.txt", b"x", content_type="text/plain"),
    }

    for service, call in calls.items():
        with pytest.raises(ClientAuthenticationError, match="Invalid token audience") as refused:
            call()
        assert "AuthenticationFailed" in str(refused.value), service
        assert refused.value.status_code == 403, service
    assert set(credential.scopes_requested) == {(STORAGE_SCOPE,)}


def test_the_storage_clients_verify_azurites_certificate(
    azurite_oauth: AzuriteEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA trusted, the TLS handshake fails: verification stays on."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = QueueClient(
        azurite_oauth.queue_service_uri,
        "untrusted",
        credential=MintingStorageCredential(),
        retry_total=0,
    )

    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.create_queue()


def test_preflight_checks_storage_by_identity_with_the_storage_credential(
    azurite_oauth: AzuriteEndpoints, trust_test_ca: TlsFiles
) -> None:
    """Preflight in Azure (no connection string) probes every queue, table and container with
    a token for Azure Storage, as the service does: a checklist, not a traceback."""
    credential = MintingStorageCredential()
    storage = StorageConnection.from_env(azurite_env(azurite_oauth))
    target = Target(
        endpoint=graph_endpoint("https://graph.microsoft.com/v1.0"),
        static_token=None,
        mode="observe",
        tenant_id=TEST_TENANT,
        alert_sender=None,
        storage=storage,
        storage_problem=None,
        client_state=None,
        notification_urls={},
    )

    checks = storage_checks(target, credential)

    assert len(checks) == STORAGE_RESOURCES
    assert all(c.name.startswith("storage ") for c in checks)
    # signed in: anything not yet created is missing, never refused
    assert [c for c in checks if c.mark == FAIL and c.detail != "does not exist"] == []
    assert set(credential.scopes_requested) == {(STORAGE_SCOPE,)}
