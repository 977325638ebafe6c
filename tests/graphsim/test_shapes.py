"""Response shapes against Microsoft's documented examples (copied into graph-examples/ here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import G_PLAIN, USERS, Harness

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).parent / "graph-examples"


def example(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((EXAMPLES / name).read_text())
    return data


async def test_delta_pages_have_the_documented_keys(sim: Harness) -> None:
    sim.sim.state.x["deltaPageSize"] = 4
    first = (await sim.get("/groups/delta?$select=displayName,description,members")).json()
    assert set(first) == set(example("delta-groups-initial-response.json"))
    group = first["value"][0]
    doc_group = example("delta-groups-initial-response.json")["value"][0]  # type: ignore[index]
    assert set(group) == set(doc_group)
    assert set(group["members@delta"][0]) == set(doc_group["members@delta"][0])
    page = first
    while "@odata.nextLink" in page:
        page = (await sim.get(page["@odata.nextLink"])).json()
    assert set(page) == set(example("delta-groups-final-page-with-deltalink.json"))
    none = (await sim.get(page["@odata.deltaLink"])).json()
    assert none["value"] == []
    assert set(none) == set(example("delta-groups-deltalink-no-changes.json"))


async def test_error_bodies_have_the_documented_keys(sim: Harness) -> None:
    r = await sim.get("/users?$filter=assignedLicenses/$count eq 0")
    doc = example("error-count-without-consistencylevel.json")["error"]
    assert r.json()["error"]["code"] == doc["code"]  # type: ignore[index]
    assert set(r.json()["error"]) == set(doc)  # type: ignore[arg-type]
    assert set(r.json()["error"]["innerError"]) == set(doc["innerError"])  # type: ignore[index]
    r = await sim.get(
        "/users?$filter=assignedLicenses/$count eq 0", headers={"ConsistencyLevel": "eventual"}
    )
    assert (
        r.json()["error"]["code"]
        == example("error-unsupported-query-needs-advanced.json")["error"]["code"]
    )  # type: ignore[index]


async def test_user_assign_license_response_has_documented_keys(sim: Harness) -> None:
    sku = next(iter(sim.sim.state.skus))
    body = {"addLicenses": [{"disabledPlans": [], "skuId": sku}], "removeLicenses": []}
    r = await sim.post(f"/users/{USERS[6]}/assignLicense", json=body)
    doc = example("user-assignlicense-response.json")
    assert {"accountEnabled", "assignedLicenses", "assignedPlans", "businessPhones"} <= set(
        r.json()
    )
    assert set(r.json()["assignedLicenses"][0]) == set(doc["assignedLicenses"][0])  # type: ignore[index]
    assert set(r.json()["assignedPlans"][0]) == set(doc["assignedPlans"][0])  # type: ignore[index]


async def test_group_notification_shape(sim: Harness) -> None:
    doc = example("change-notification-outlook-message-created.json")["value"][0]  # type: ignore[index]
    sim.sim.state.subscriptions["s"] = {
        "id": "s",
        "resource": "/groups",
        "changeType": "updated",
        "clientState": "c",
        "notificationUrl": "http://127.0.0.1:9/x",
        "expirationDateTime": "2025-01-07T00:00:00.0000000Z",
        "applicationId": "a",
    }
    sim.sim.notifier.configure({"enabled": True})
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    (note,) = sim.sim.notifier.pending["http://127.0.0.1:9/x"]
    assert set(note) == set(doc) - {"id"}
    assert set(note["resourceData"]) == set(doc["resourceData"]) - {"@odata.etag"}
    sim.sim.notifier.pending.clear()
    await sim.sim.notifier.close()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RUN_SLOW") != "1", reason="set RUN_SLOW=1")
def test_scale_bench_pages_100k_users() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "bench" / "graphsim_scale.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=root,
    ).stdout
    assert "users=100000" in out
    wall = float(out.split("wall time paging: ")[1].split("s")[0])
    rss = float(out.split("server peak RSS: ")[1].split(" ")[0])
    assert wall < 10
    assert rss < 1500
