"""Azurite over HTTPS with ``--oauth basic``, and a client that trusts only its test CA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite, AzuriteEndpoints
from tests.storage_identity.tls import TlsFiles, make_tls

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def azurite_oauth(tls: TlsFiles) -> Iterator[AzuriteEndpoints]:
    """Azurite that takes bearer tokens (HTTPS, its certificate signed by the test CA)."""
    with Azurite(cert=tls.cert, key=tls.key, oauth="basic") as endpoints:
        yield endpoints


@pytest.fixture
def trust_test_ca(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> TlsFiles:
    """The storage SDKs' transport (requests) verifies against the test CA, for this test only.

    requests reads ``REQUESTS_CA_BUNDLE`` per request when verification is on (azure-core's
    default), so production code runs unchanged and nothing disables verification."""
    for name in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    return tls
