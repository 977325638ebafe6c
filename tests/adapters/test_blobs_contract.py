"""The BlobStore contract, run against the in-memory store and against Azurite alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.azurite import AzuriteEndpoints
from shared.adapters.blobs import AzureBlobStore, blobs_for, container_client
from shared.fakes.blobs import InMemoryBlobStore
from shared.platform.settings import StorageConnection
from shared.ports.blobs import REPORTS_CONTAINER, BlobStore
from tests.storage_identity.minting import MintingStorageCredential


@dataclass
class StoreUnderTest:
    store: BlobStore
    content_type: Callable[[str], str | None]  # name -> the stored Content-Type


@pytest.fixture(params=["memory", "azurite"])
def subject(request: pytest.FixtureRequest) -> StoreUnderTest:
    if request.param == "memory":
        fake = InMemoryBlobStore()
        return StoreUnderTest(fake, fake.content_type)
    azurite: AzuriteEndpoints = request.getfixturevalue("azurite")
    container = f"test-{uuid.uuid4().hex[:16]}"
    store = AzureBlobStore.from_connection(azurite.connection_string, container)

    def content_type(name: str) -> str | None:
        return str(
            store.client.get_blob_client(name).get_blob_properties().content_settings.content_type
        )

    return StoreUnderTest(store, content_type)


def test_put_then_get_returns_the_bytes_and_keeps_the_content_type(
    subject: StoreUnderTest,
) -> None:
    data = b'{"users": 3}\n' + bytes(range(256))
    subject.store.put("nightly/2024-05-01/summary.json", data, content_type="application/json")

    assert subject.store.get("nightly/2024-05-01/summary.json") == data
    assert subject.content_type("nightly/2024-05-01/summary.json") == "application/json"


def test_get_of_a_missing_blob_is_none(subject: StoreUnderTest) -> None:
    assert subject.store.get("nowhere/nothing.csv") is None


def test_put_overwrites(subject: StoreUnderTest) -> None:
    subject.store.put("a.csv", b"one", content_type="text/csv")
    subject.store.put("a.csv", b"two", content_type="text/plain")

    assert subject.store.get("a.csv") == b"two"
    assert subject.content_type("a.csv") == "text/plain"
    assert subject.store.list() == ["a.csv"]


def test_list_is_sorted_and_filtered_by_prefix(subject: StoreUnderTest) -> None:
    for name in ["nightly/b.json", "adhoc/x.csv", "nightly/a.json", "nightly-old/c.json"]:
        subject.store.put(name, b"x", content_type="application/json")

    assert subject.store.list() == [
        "adhoc/x.csv",
        "nightly-old/c.json",
        "nightly/a.json",
        "nightly/b.json",
    ]
    assert subject.store.list("nightly/") == ["nightly/a.json", "nightly/b.json"]
    assert subject.store.list("none/") == []


def test_an_empty_store_lists_nothing(subject: StoreUnderTest) -> None:
    assert subject.store.list() == []


def test_delete_removes_and_deleting_a_missing_blob_is_fine(subject: StoreUnderTest) -> None:
    subject.store.put("a.csv", b"1", content_type="text/csv")
    subject.store.put("b.csv", b"2", content_type="text/csv")

    subject.store.delete("a.csv")
    subject.store.delete("a.csv")
    subject.store.delete("never.csv")

    assert subject.store.get("a.csv") is None
    assert subject.store.list() == ["b.csv"]


def test_delete_older_than_deletes_only_old_blobs_under_the_prefix(
    subject: StoreUnderTest,
) -> None:
    for name in ["nightly/1.json", "nightly/2.json", "adhoc/3.json"]:
        subject.store.put(name, b"{}", content_type="application/json")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    in_a_minute = datetime.now(UTC) + timedelta(minutes=1)

    assert subject.store.delete_older_than("nightly/", an_hour_ago) == 0
    assert subject.store.delete_older_than("nightly/", in_a_minute) == 2
    assert subject.store.list() == ["adhoc/3.json"]
    assert subject.store.delete_older_than("nightly/", in_a_minute) == 0
    naive_utc = in_a_minute.replace(tzinfo=None)
    assert subject.store.delete_older_than("", naive_utc) == 1
    assert subject.store.list() == []


# --------------------------------------------------------------------------- one side only
def test_in_memory_retention_follows_its_clock() -> None:
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    store = InMemoryBlobStore(now=lambda: now[0])
    store.put("nightly/old.json", b"{}", content_type="application/json")
    now[0] += timedelta(days=31)
    store.put("nightly/new.json", b"{}", content_type="application/json")

    assert store.delete_older_than("nightly/", now[0] - timedelta(days=30)) == 1
    assert store.list() == ["nightly/new.json"]


def test_azure_store_creates_a_private_container_on_first_use(azurite: AzuriteEndpoints) -> None:
    container = f"test-{uuid.uuid4().hex[:16]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    assert not service.get_container_client(container).exists()
    store = AzureBlobStore.from_connection(azurite.connection_string, container)

    assert store.list() == []

    client = service.get_container_client(container)
    assert client.exists()
    assert client.get_container_properties().public_access is None
    store.put("x.txt", b"x", content_type="text/plain")  # the container is already there
    assert AzureBlobStore.from_connection(azurite.connection_string, container).list() == ["x.txt"]


def test_blobs_for_is_the_reports_container(azurite: AzuriteEndpoints) -> None:
    store = blobs_for(StorageConnection(connection_string=azurite.connection_string))
    assert isinstance(store, AzureBlobStore)
    assert store.container == REPORTS_CONTAINER == "reports"
    name = f"test/{uuid.uuid4().hex}.txt"
    store.put(name, b"hello", content_type="text/plain")
    assert blobs_for(azurite.connection_string).get(name) == b"hello"
    store.delete(name)


def test_identity_based_storage_uses_the_blob_service_uri() -> None:
    storage = StorageConnection(
        queue_service_uri="https://acct.queue.core.windows.net",
        table_service_uri="https://acct.table.core.windows.net",
        blob_service_uri="https://acct.blob.core.windows.net",
        managed_identity_client_id="cid",
    )
    credential = MintingStorageCredential()
    client = container_client(storage, credential=credential)  # no network call
    assert client.url == "https://acct.blob.core.windows.net/reports"
    assert client.container_name == REPORTS_CONTAINER
    assert client.credential is credential
    with pytest.raises(ValueError, match="blob service URI"):
        container_client(
            StorageConnection(queue_service_uri="q", table_service_uri="t"), credential=credential
        )


def test_an_account_name_implies_the_blob_service_uri() -> None:
    storage = StorageConnection.from_env({"AzureWebJobsStorage__accountName": "acct"})
    assert storage.blob_service_uri == "https://acct.blob.core.windows.net"
    explicit = StorageConnection.from_env(
        {
            "AzureWebJobsStorage__queueServiceUri": "https://q.example",
            "AzureWebJobsStorage__tableServiceUri": "https://t.example",
            "AzureWebJobsStorage__blobServiceUri": "https://b.example",
        }
    )
    assert explicit.blob_service_uri == "https://b.example"
