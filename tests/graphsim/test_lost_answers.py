"""Faults after the handler: the write is done, the answer is lost (`applyReset`, `apply503`).

Why they matter: a gateway or a dropped connection can lose Graph's answer to a request Graph
carried out, so a client that retries every 5xx or reset does some writes twice (Microsoft's
guidance: retry only idempotent requests, or check before repeating a non-idempotent one -
https://learn.microsoft.com/en-us/azure/architecture/best-practices/retry-service-specific and
https://learn.microsoft.com/en-us/graph/best-practices-concept#handling-expected-errors).
These faults let tests produce exactly that.
"""

from __future__ import annotations

import httpx
import pytest

from graphsim.client import SimClient

from .conftest import G_SALES, USERS, Harness

pytestmark = pytest.mark.anyio
REPROCESS = "POST /users/{id}/reprocessLicenseAssignment"


async def _audits(sim: Harness, activity: str) -> list[dict[str, object]]:
    audits = (await sim.get("/auditLogs/directoryAudits")).json()["value"]
    return [a for a in audits if a["activityDisplayName"] == activity]


async def test_apply_then_503_does_the_write_and_answers_503(sim: Harness) -> None:
    sim.sim.faults.configure({"next": ["apply503"]})

    r = await sim.post(f"/users/{USERS[0]}/reprocessLicenseAssignment")

    assert r.status_code == 503
    assert r.json()["error"]["code"] == "serviceNotAvailable"
    assert "Retry-After" in r.headers
    assert len(await _audits(sim, "Change user license")) == 1  # it was done
    assert sim.sim.state.counters[REPROCESS] == {"200+apply503": 1}


async def test_apply_then_reset_does_the_write_and_drops_the_connection(sim: Harness) -> None:
    sim.sim.faults.configure({"next": ["applyReset"]})

    with pytest.raises(ConnectionResetError):
        await sim.post(f"/groups/{G_SALES}/members/$ref", json=_ref(USERS[7]))

    members = (await sim.get(f"/groups/{G_SALES}/members")).json()["value"]
    assert USERS[7] in {m["id"] for m in members}  # the member was added
    again = await sim.post(f"/groups/{G_SALES}/members/$ref", json=_ref(USERS[7]))
    assert again.status_code == 400  # a blind retry meets its own earlier write


async def test_a_blind_retry_after_a_lost_answer_writes_twice(sim: Harness) -> None:
    sim.sim.faults.configure({"next": ["apply503", "none"]})

    first = await sim.post(f"/users/{USERS[1]}/reprocessLicenseAssignment")
    second = await sim.post(f"/users/{USERS[1]}/reprocessLicenseAssignment")

    assert (first.status_code, second.status_code) == (503, 200)
    assert len(await _audits(sim, "Change user license")) == 2
    assert sim.sim.state.counters[REPROCESS] == {"200+apply503": 1, "200": 1}


async def test_before_the_handler_faults_do_nothing(sim: Harness) -> None:
    sim.sim.faults.configure({"next": ["503", "429"]})

    assert (await sim.post(f"/users/{USERS[2]}/reprocessLicenseAssignment")).status_code == 503
    assert (await sim.post(f"/users/{USERS[2]}/reprocessLicenseAssignment")).status_code == 429
    assert await _audits(sim, "Change user license") == []


async def test_writes_only_leaves_reads_alone_and_rates_are_seeded(sim: Harness) -> None:
    sim.sim.faults.configure({"apply503Rate": 1.0, "writesOnly": True, "seed": 3})
    assert (await sim.get("/organization")).status_code == 200
    assert (await sim.post(f"/users/{USERS[3]}/reprocessLicenseAssignment")).status_code == 503

    def draws() -> list[str | None]:
        sim.sim.faults.configure(
            {"applyResetRate": 0.2, "apply503Rate": 0.2, "rate503": 0.1, "seed": 9}
        )
        return [sim.sim.faults.pick("POST") for _ in range(50)]

    first = draws()
    assert first == draws()
    assert {"applyReset", "apply503", "503", None} <= set(first)
    sim.sim.faults.configure({"applyResetRate": 0, "apply503Rate": 0, "rate503": 0})


async def test_in_a_batch_a_lost_answer_is_a_503_item(sim: Harness) -> None:
    sim.sim.faults.configure({"next": ["applyReset"]})  # drawn by the item, not the batch
    body = {
        "requests": [
            {"id": "1", "method": "POST", "url": f"/users/{USERS[4]}/reprocessLicenseAssignment"}
        ]
    }

    r = await sim.post("/$batch", json=body)

    assert r.status_code == 200
    [item] = r.json()["responses"]
    assert item["status"] == 503
    assert len(await _audits(sim, "Change user license")) == 1


def test_the_control_api_sets_and_shows_them_and_refuses_unknown_ones(sync_server: str) -> None:
    with SimClient(sync_server) as ctl, httpx.Client(headers={"Authorization": "Bearer t"}) as c:
        shown = ctl.set_faults(next=["applyReset"], apply503Rate=0.0)
        assert shown["next"] == ["applyReset"]
        with pytest.raises(httpx.TransportError):
            c.post(f"{sync_server}/users/{USERS[5]}/reprocessLicenseAssignment")
        assert ctl.counters()[REPROCESS] == {"200+applyReset": 1}
        refused = c.put(sync_server.replace("/v1.0", "") + "/_sim/faults", json={"next": ["x"]})
        assert refused.status_code == 400
        assert ctl.set_faults()["next"] == []


def _ref(uid: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"}


async def test_graph_removing_a_subscription_sends_subscription_removed(sim: Harness) -> None:
    """Graph may remove a subscription itself and then notifies its lifecycle URL
    (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events)."""
    sim.sim.notifier.enabled = False  # keep the notification in the log, not on the wire
    sim.sim.state.subscriptions["s1"] = {
        "id": "s1",
        "lifecycleNotificationUrl": "https://guard.example.net/api/graph/lifecycle",
        "expirationDateTime": "2025-01-08T09:00:00Z",
        "clientState": "c",
    }

    assert sim.sim.notifier.remove_subscription("s1") == {"removed": "s1", "notified": True}

    assert "s1" not in sim.sim.state.subscriptions
    assert sim.sim.notifier.log[-1]["outcome"] == "disabled"  # it was sent (delivery is off)
    with pytest.raises(Exception, match="No subscription"):
        sim.sim.notifier.remove_subscription("s1")
