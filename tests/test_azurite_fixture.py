from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite, AzuriteEndpoints


def test_azurite_accepts_the_sdk_default_api_version(azurite: AzuriteEndpoints) -> None:
    """Azurite runs with --skipApiVersionCheck, so the SDK's newer x-ms-version is accepted."""
    queue = QueueClient.from_connection_string(azurite.connection_string, "fixture-check")
    queue.create_queue()
    queue.send_message("hello")

    assert [m.content for m in queue.receive_messages()] == ["hello"]


def test_by_default_azurite_serves_plain_http_with_the_account_key() -> None:
    endpoints = Azurite(ports=(1, 2, 3)).endpoints  # not started: only the addresses

    assert endpoints.scheme == "http"
    assert endpoints.connection_string.startswith("DefaultEndpointsProtocol=http;")
    assert "QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;" in endpoints.connection_string
    assert endpoints.queue_service_uri == "http://127.0.0.1:2/devstoreaccount1"


def test_with_a_certificate_azurite_serves_https(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"

    endpoints = Azurite(ports=(1, 2, 3), cert=cert, key=key, oauth="basic").endpoints

    assert endpoints.blob_service_uri == "https://127.0.0.1:1/devstoreaccount1"
    assert endpoints.table_service_uri == "https://127.0.0.1:3/devstoreaccount1"
    assert "TableEndpoint=https://127.0.0.1:3/devstoreaccount1;" in endpoints.connection_string


def test_oauth_needs_https_and_https_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only over HTTPS"):
        Azurite(oauth="basic")
    with pytest.raises(ValueError, match="both a certificate and its key"):
        Azurite(cert=tmp_path / "cert.pem")
