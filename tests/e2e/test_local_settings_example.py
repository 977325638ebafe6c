"""`local.settings.json.example` as devhost/README.md runs it "by hand": the real function app
on the dev host (started with the example's function key) against graphsim's demo tenant. Its
webhook URLs must open the host's HTTP functions (Graph's validation handshake needs the key)
and its TENANT_ID must be the tenant graphsim notifies from, or every notification is rejected.
Only what the example cannot know is replaced: Azurite's and graphsim's free ports, and the
host's port in the URLs."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from devhost.azurite import AzuriteEndpoints, wipe_storage
from devhost.host import DevHost
from devhost.stack import NEVER
from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from tests.demo_tenant import ADELE, EMS_E3
from tests.e2e import test_pipeline_e2e as pipeline
from tests.e2e.harness import EventCapture, forget_services, free_port, load_tenant
from tests.e2e.test_pipeline_e2e import ROOT
from tests.leftover_threads import no_leftover_threads  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.e2e
capture = pipeline.capture  # the service's log events, captured from the start


def example_values() -> dict[str, str]:
    document = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    return dict(document["Values"])


def test_the_example_settings_subscribe_and_take_graphsims_notifications(
    azurite: AzuriteEndpoints, capture: EventCapture
) -> None:
    values = example_values()
    key = parse_qs(urlsplit(values["NOTIFICATION_URL"]).query).get("code", [None])[0]
    port = free_port()
    wipe_storage(azurite.connection_string, containers=True)
    with serve_in_thread(load_tenant(), token=values["GRAPH_STATIC_TOKEN"]) as graph_url:
        settings = values | {
            "AzureWebJobsStorage": azurite.connection_string,
            "GRAPH_BASE_URL": graph_url,
            "NOTIFICATION_URL": values["NOTIFICATION_URL"].replace(":7071/", f":{port}/"),
            "LIFECYCLE_NOTIFICATION_URL": values["LIFECYCLE_NOTIFICATION_URL"].replace(
                ":7071/", f":{port}/"
            ),
        }
        settings |= {name: NEVER for name in values if name.endswith("_SCHEDULE")}
        import function_app  # its import builds the app

        forget_services()
        host = DevHost(
            function_app.app,
            settings,
            port=port,
            function_key=key,
            poll_interval=0.05,
            host_json_path=ROOT / "host.json",
            shutdown_grace=2.0,
        )
        host.start()
        try:
            keeper = host.fire_timer("subscription_keeper")
            host.wait_idle(timeout=60, scheduled_ok=True)
            with SimClient(graph_url) as sim:
                sim.add_member(EMS_E3, ADELE)
                sim.drain()
            host.wait_idle(timeout=60, scheduled_ok=True)
        finally:
            host.stop()
            forget_services()

    events = [e["event"] for e in capture.events]
    assert keeper.outcome == "succeeded", keeper.error
    assert "security.notification_rejected" not in events
    assert "notification.accepted" in events
