"""Graph and storage calls as Application Insights dependencies: method, host, status and
duration, and a URL with no mailbox, user id, entity key or query value
(`shared.platform.telemetry_urls`).

The probe runs the real exporter (`configure_logging` with a connection string) against a
loopback ingestion endpoint, and the real Graph adapter against a loopback Graph: what is
checked is what ingestion received."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.platform.telemetry_urls import redacted_url
from tests.infra.test_observability import _run

pytestmark = pytest.mark.xdist_group("observability-probe")

SENDER = "alerts@contoso.com"
USER_ID = "0b9c3a9e-8f2d-4c55-9d4e-1f2a3b4c5d6e"

_GRAPH_PROBE = """
import asyncio, gzip, http.server, json, logging, os, sys, threading, time
given = json.loads(sys.argv[1])
received = []

class Ingestion(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body[:2] == bytes([0x1F, 0x8B]):
            body = gzip.decompress(body)
        n = 0
        if self.path.startswith("/v2.1/track"):
            items = json.loads(body)
            items = items if isinstance(items, list) else [items]
            received.extend(items)
            n = len(items)
        answer = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-qps-subscribed", "false")  # live metrics: nobody watching
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass

class Graph(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"id": "AAMkADraft=", "value": []}).encode()
        self.send_response(202 if self.path.endswith("/sendMail") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass

servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Ingestion, Graph)]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
ingestion = f"http://127.0.0.1:{servers[0].server_port}/"
os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # export spans every 0.1 s, not every 5 s
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import configure_logging
configure_logging(env={"APPLICATIONINSIGHTS_CONNECTION_STRING": (
    "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
    f"IngestionEndpoint={ingestion};LiveEndpoint={ingestion}")})
from shared.adapters.graph import GraphDirectory, build_graph_client

async def calls():
    graph = f"http://127.0.0.1:{servers[1].server_port}/v1.0"
    async with GraphDirectory(build_graph_client(graph, static_token="t")) as directory:
        await directory.send_mail(given["sender"], {"subject": "digest"})
        await directory.find_draft(given["sender"], "<digest-1@contoso.com>")
        await directory.reprocess_license_assignment(given["user_id"])

asyncio.run(calls())
# a storage call (the Azure SDK's pipeline): a table entity's URL carries its keys
from azure.data.tables import TableClient
table = TableClient.from_connection_string(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    f"TableEndpoint=http://127.0.0.1:{servers[1].server_port}/devstoreaccount1;", "findings")
try:
    table.get_entity(given["user_id"], given["sender"])
except Exception:  # the loopback Graph answers no entity: the call is what counts
    pass
deadline = time.time() + 20
def http_dependencies():
    return [i for i in received if i["data"]["baseData"].get("type") == "HTTP"]
while time.time() < deadline and len(http_dependencies()) < 4:
    time.sleep(0.1)
time.sleep(0.5)  # anything later still arrives
print(json.dumps({"received": received, "graph_port": servers[1].server_port}))
sys.stdout.flush()
os._exit(0)  # skip the exit-time flush: nothing may leave the machine
"""


@pytest.fixture(scope="module")
def exported() -> dict[str, Any]:
    result, _ = _run(_GRAPH_PROBE, {"sender": SENDER, "user_id": USER_ID})
    return result


def _http_dependencies(exported: dict[str, Any]) -> list[dict[str, Any]]:
    items = [item["data"]["baseData"] for item in exported["received"]]
    return [data for data in items if data.get("type") == "HTTP"]


def test_a_graph_dependency_keeps_method_host_status_and_duration(
    exported: dict[str, Any],
) -> None:
    host = f"127.0.0.1:{exported['graph_port']}"
    dependencies = {data["name"]: data for data in _http_dependencies(exported)}

    assert set(dependencies) == {
        "POST /v1.0/users/{id}/sendMail",
        "GET /v1.0/users/{id}/mailFolders/drafts/messages",
        "POST /v1.0/users/{id}/reprocessLicenseAssignment",
        "GET /devstoreaccount1/findings({id})",  # the storage call's, keys left out too
    }
    sent = dependencies["POST /v1.0/users/{id}/sendMail"]
    assert sent["data"] == f"http://{host}/v1.0/users/{{id}}/sendMail"
    assert sent["target"] == host
    assert sent["resultCode"] == "202"
    assert sent["success"] is True
    assert sent["duration"].startswith("0.00:00:")
    found = dependencies["GET /v1.0/users/{id}/mailFolders/drafts/messages"]
    assert found["resultCode"] == "200"
    assert found["data"].endswith("/messages?$filter={value}&$select=id&$top=10")


def test_no_mailbox_or_user_id_reaches_ingestion(exported: dict[str, Any]) -> None:
    """The alert sender's mailbox, a user's id and the internet message id in a $filter are in
    the URLs Graph was called with; none may be in anything exported (names, data, the operation
    name tag, properties)."""
    everything = json.dumps(exported["received"])

    assert len(_http_dependencies(exported)) == 4  # the calls were exported
    for secret in ("contoso", "alerts%40", USER_ID, "digest-1"):
        assert secret not in everything


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://graph.microsoft.com/v1.0/users/alerts%40contoso.com/messages",
            "https://graph.microsoft.com/v1.0/users/{id}/messages",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/u-1/reprocessLicenseAssignment",
            "https://graph.microsoft.com/v1.0/users/{id}/reprocessLicenseAssignment",
        ),
        (
            "https://graph.microsoft.com/v1.0/groups/g-1/transitiveMembers/microsoft.graph.user"
            "?$select=id&$top=999",
            "https://graph.microsoft.com/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user"
            "?$select=id&$top=999",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=opaque",
            "https://graph.microsoft.com/v1.0/users/delta?$deltatoken={value}",
        ),
        (
            "https://graph.microsoft.com/v1.0/users/s%40contoso.com/messages/AAMk%3D/send",
            "https://graph.microsoft.com/v1.0/users/{id}/messages/{id}/send",
        ),
        (
            "https://graph.microsoft.com/v1.0/users('x%40contoso.com')/sendMail",
            "https://graph.microsoft.com/v1.0/users({id})/sendMail",
        ),
        (
            f"https://acct.table.core.windows.net/Findings(PartitionKey='t',RowKey='{USER_ID}')",
            "https://acct.table.core.windows.net/Findings({id})",
        ),
        ("https://graph.microsoft.com/v1.0/$batch", "https://graph.microsoft.com/v1.0/$batch"),
        ("https://u:p@host:8443/x/subscriptions/s-1", "https://host:8443/x/subscriptions/{id}"),
    ],
)
def test_redacted_url(url: str, expected: str) -> None:
    assert redacted_url(url) == expected
