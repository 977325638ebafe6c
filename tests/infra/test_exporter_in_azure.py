"""The exporter as the app runs it in Azure: `configure_logging()` reading the process
environment Bicep writes (`infra/app/api.bicep`), Entra authentication with the user-assigned
identity named in ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (the resource has local auth
off), a token from the platform's managed-identity endpoint, and an HTTPS post to ingestion.

Both endpoints are ours, on loopback: the identity endpoint speaks the App Service protocol
(``IDENTITY_ENDPOINT``, ``X-IDENTITY-HEADER``, tests/storage_identity/identity_endpoint.py),
ingestion is HTTPS with a certificate of a throw-away CA the probe alone trusts (azure-core
sends a bearer token over HTTPS only)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.test_infra_crosscheck import app_settings
from tests.infra.test_observability import _run
from tests.storage_identity.tls import make_tls

pytestmark = pytest.mark.xdist_group("observability-probe")

CLIENT_ID = "11111111-2222-4333-8444-555555555555"

_AZURE_PROBE = """
import gzip, http.server, json, logging, os, ssl, sys, threading, time
from urllib.parse import parse_qs, urlsplit
given = json.loads(sys.argv[1])
seen = {"tracked": [], "identity": []}

class Identity(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlsplit(self.path).query)
        resource = query.get("resource", [""])[0]
        seen["identity"].append({
            "resource": resource,
            "client_id": query.get("client_id", [None])[0],
            "header": self.headers.get("X-IDENTITY-HEADER"),
        })
        body = json.dumps({"access_token": "minted-for-monitor", "resource": resource,
                           "expires_on": str(int(time.time()) + 3600),
                           "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Ingestion(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body[:2] == bytes([0x1F, 0x8B]):
            body = gzip.decompress(body)
        n = 0
        if self.path.startswith("/v2.1/track"):
            items = json.loads(body)
            items = items if isinstance(items, list) else [items]
            n = len(items)
            for item in items:
                data = item.get("data", {}).get("baseData", {})
                seen["tracked"].append({"authorization": self.headers.get("Authorization"),
                                        "properties": data.get("properties") or {}})
        answer = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-qps-subscribed", "false")  # live metrics: nobody watching
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass

identity = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Identity)
ingestion = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(given["cert"], given["key"])
ingestion.socket = tls.wrap_socket(ingestion.socket, server_side=True)
for server in (identity, ingestion):
    threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"https://127.0.0.1:{ingestion.server_port}/"
os.environ.update({
    # as api.bicep writes them, with this probe's endpoints
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
        f"IngestionEndpoint={endpoint};LiveEndpoint={endpoint}"),
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": given["authentication"],
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": given["worker_telemetry"],
    # as the platform gives a Functions worker its identity
    "IDENTITY_ENDPOINT": f"http://127.0.0.1:{identity.server_port}/msi/token",
    "IDENTITY_HEADER": "platform-header",
    "REQUESTS_CA_BUNDLE": given["ca"],
    "OTEL_BLRP_SCHEDULE_DELAY": "100",  # export every 0.1 s, not every 5 s
})
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import bind_correlation, configure_logging, get_logger
configure_logging()  # as bootstrap does: no arguments, the process environment
with bind_correlation("corr-in-azure", user_id="u-1"):
    get_logger("shared.service.reprocessing").info("reprocess.called", user_found=True)
deadline = time.time() + 20
while time.time() < deadline and not seen["tracked"]:
    time.sleep(0.1)
print(json.dumps(seen))
sys.stdout.flush()
os._exit(0)  # skip the exit-time flush
"""


@pytest.fixture(scope="module")
def in_azure(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    settings = app_settings()
    authentication = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].strip("'")
    given = {
        "ca": str(tls.ca),
        "cert": str(tls.cert),
        "key": str(tls.key),
        "authentication": authentication.replace("${identityClientId}", CLIENT_ID),
        "worker_telemetry": settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"].strip("'"),
    }
    result, _ = _run(_AZURE_PROBE, given)
    return result


def test_the_exporter_signs_in_as_the_user_assigned_identity(in_azure: dict[str, Any]) -> None:
    assert in_azure["identity"]
    assert {(r["resource"].rstrip("/"), r["client_id"]) for r in in_azure["identity"]} == {
        ("https://monitor.azure.com", CLIENT_ID)
    }
    assert {r["header"] for r in in_azure["identity"]} == {"platform-header"}


def test_the_events_reach_ingestion_with_the_identitys_token_and_their_fields(
    in_azure: dict[str, Any],
) -> None:
    [tracked] = [t for t in in_azure["tracked"] if t["properties"].get("event")]

    assert tracked["authorization"] == "Bearer minted-for-monitor"
    assert {
        "event": "reprocess.called",
        "correlation_id": "corr-in-azure",
        "user_id": "u-1",
    }.items() <= tracked["properties"].items()
