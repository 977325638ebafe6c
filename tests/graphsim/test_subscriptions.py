"""Subscriptions (handshake, lifetime, quota, URL rules) and change-notification delivery."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from graphsim.clock import iso

from .conftest import G_PLAIN, G_SALES, START, USERS, Harness
from .receiver import Receiver, receiver

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).parent / "graph-examples"


def sub_body(url: str, minutes: float = 60 * 24, **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "updated,deleted",
        "notificationUrl": url,
        "resource": "/groups",
        "expirationDateTime": iso(START + timedelta(minutes=minutes)),
        "clientState": "secret-state",
        **extra,
    }


@pytest.fixture
def rec() -> Any:
    with receiver() as r:
        yield r


async def test_create_performs_handshake_and_matches_doc_shape(sim: Harness, rec: Receiver) -> None:
    r = await sim.post("/subscriptions", json=sub_body(rec.url, lifecycleNotificationUrl=rec.url))
    assert r.status_code == 201, r.text
    body = r.json()
    example = json.loads((EXAMPLES / "subscription-create-response.json").read_text())
    assert set(example) <= set(body)
    assert body["clientState"] == "secret-state"
    assert body["expirationDateTime"].endswith("0Z")
    assert len(rec.validations) == 1  # same URL for both: validated once
    assert rec.validations[0].startswith("Validation: ")
    assert rec.queries[0]["code"] == ["secret-key"]  # existing query string kept
    listed = (await sim.get("/subscriptions")).json()["value"]
    assert listed[0]["id"] == body["id"]
    assert listed[0]["clientState"] is None
    one = (await sim.get(f"/subscriptions/{body['id']}")).json()
    assert one["clientState"] is None


@pytest.mark.parametrize("mode", ["wrong-echo", "status-500", "html"])
async def test_failed_handshake_is_400(sim: Harness, rec: Receiver, mode: str) -> None:
    rec.mode = mode
    r = await sim.post("/subscriptions", json=sub_body(rec.url))
    assert r.status_code == 400
    assert "validation" in r.json()["error"]["message"].lower()
    assert sim.sim.state.subscriptions == {}


async def test_unreachable_endpoint_is_400(sim: Harness) -> None:
    r = await sim.post("/subscriptions", json=sub_body("http://127.0.0.1:9/nothing"))
    assert r.status_code == 400


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "ftp://127.0.0.1/x", "http://10.0.0.1/hook", "not a url"],
)
async def test_https_required_except_loopback(sim: Harness, url: str) -> None:
    r = await sim.post("/subscriptions", json=sub_body(url))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidRequest"


async def test_lifetime_limit_and_renewal(sim: Harness, rec: Receiver) -> None:
    r = await sim.post("/subscriptions", json=sub_body(rec.url, minutes=41_761))
    assert r.status_code == 400
    r = await sim.post("/subscriptions", json=sub_body(rec.url, minutes=41_760))
    assert r.status_code == 201
    sid = r.json()["id"]
    new = iso(START + timedelta(days=2))
    r = await sim.http.patch(f"/subscriptions/{sid}", json={"expirationDateTime": new})
    assert r.status_code == 200
    assert r.json()["expirationDateTime"].startswith(new[:19])
    r = await sim.http.patch(f"/subscriptions/{sid}", json={"lifecycleNotificationUrl": rec.url})
    assert r.status_code == 400
    assert (await sim.post(f"/subscriptions/{sid}/reauthorize")).status_code == 204
    assert (await sim.http.delete(f"/subscriptions/{sid}")).status_code == 204
    assert (await sim.get(f"/subscriptions/{sid}")).status_code == 404


@pytest.mark.parametrize("change_type", ["created", "created,updated,deleted", "updated,moved"])
async def test_groups_take_updated_and_deleted_only(
    sim: Harness, rec: Receiver, change_type: str
) -> None:
    """User and group change notifications support `updated` and `deleted` only; a creation
    comes as `updated` (Microsoft Learn, subscription resource type, changeType)."""
    r = await sim.post("/subscriptions", json=sub_body(rec.url, changeType=change_type))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "InvalidRequest"
    assert rec.validations == []  # refused before the handshake
    assert (await sim.post("/subscriptions", json=sub_body(rec.url))).status_code == 201


async def test_quota_of_100_per_app(sim: Harness, rec: Receiver) -> None:
    for _ in range(100):
        assert (await sim.post("/subscriptions", json=sub_body(rec.url))).status_code == 201
    r = await sim.post("/subscriptions", json=sub_body(rec.url))
    assert r.status_code == 403
    assert "100" in r.json()["error"]["message"]
    other = await sim.http.post(
        "/subscriptions", json=sub_body(rec.url), headers={"Authorization": "Bearer another-app"}
    )
    assert other.status_code == 201


async def test_group_changes_are_notified(sim: Harness, rec: Receiver) -> None:
    sid = (await sim.post("/subscriptions", json=sub_body(rec.url))).json()["id"]
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{USERS[7]}"}
    await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref)
    await sim.http.delete(f"/groups/{G_PLAIN}")
    assert (await sim.sim.drain())["quiet"]
    notes = rec.notifications()
    assert [(n["changeType"], n["resource"]) for n in notes] == [
        ("updated", f"Groups/{G_SALES}"),
        ("deleted", f"Groups/{G_PLAIN}"),
    ]
    first = notes[0]
    assert first["subscriptionId"] == sid
    assert first["clientState"] == "secret-state"
    assert first["tenantId"] == sim.sim.state.tenant_id
    assert first["resourceData"] == {
        "@odata.type": "#Microsoft.Graph.Group",
        "@odata.id": f"Groups/{G_SALES}",
        "id": G_SALES,
    }
    assert rec.queries[-1]["code"] == ["secret-key"]
    delivered = [e for e in sim.sim.notifier.log if e["outcome"] == "delivered"]
    assert sum(e["count"] for e in delivered) == 2


async def test_delivery_off_and_drop_and_duplicate(sim: Harness, rec: Receiver) -> None:
    await sim.post("/subscriptions", json=sub_body(rec.url))
    sim.sim.notifier.configure({"enabled": False})
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert rec.notifications() == []
    assert sim.sim.notifier.log[-1]["outcome"] == "disabled"
    sim.sim.notifier.configure({"enabled": True, "dropRate": 1.0})
    sim.sim.state.remove_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert rec.notifications() == []
    sim.sim.notifier.configure({"dropRate": 0.0, "duplicateRate": 1.0})
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert len(rec.notifications()) == 2


async def test_failed_delivery_is_retried(sim: Harness, rec: Receiver) -> None:
    await sim.post("/subscriptions", json=sub_body(rec.url))
    sim.sim.notifier.configure({"backoffSeconds": [0.01], "maxAttempts": 3})
    rec.fail_next = 2
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert len(rec.notifications()) == 1
    attempts = [e["attempt"] for e in sim.sim.notifier.log if "attempt" in e]
    assert attempts == [1, 2, 3]
    rec.fail_next = 5
    sim.sim.state.remove_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert sim.sim.notifier.log[-1]["outcome"] == "discarded"


async def test_lifecycle_reauthorization_and_expiry(sim: Harness, rec: Receiver) -> None:
    body = sub_body(rec.url, minutes=180, lifecycleNotificationUrl=rec.url)
    sid = (await sim.post("/subscriptions", json=body)).json()["id"]
    sim.sim.advance(100 * 60)
    await sim.sim.drain()
    assert rec.notifications() == []
    sim.sim.advance(21 * 60)  # within 60 minutes of expiry
    await sim.sim.drain()
    (event,) = rec.notifications()
    example = json.loads(
        (EXAMPLES / "lifecycle-notification-reauthorizationRequired.json").read_text()
    )
    assert set(event) == set(example["value"][0])
    assert event["lifecycleEvent"] == "reauthorizationRequired"
    assert event["subscriptionId"] == sid
    sim.sim.advance(30 * 60)
    await sim.sim.drain()
    assert len(rec.notifications()) == 1  # once per expiry value
    sim.sim.advance(30 * 60)
    assert sim.sim.state.subscriptions == {}
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    await sim.sim.drain()
    assert len(rec.notifications()) == 1


async def test_a_subscription_is_found_by_its_id_in_upper_case(sim: Harness, rec: Receiver) -> None:
    created = (await sim.post("/subscriptions", json=sub_body(rec.url))).json()

    one = await sim.get(f"/subscriptions/{created['id'].upper()}")
    deleted = await sim.http.delete(f"/subscriptions/{created['id'].upper()}")

    assert (one.status_code, one.json()["id"]) == (200, created["id"])
    assert deleted.status_code == 204
    assert (await sim.get("/subscriptions")).json()["value"] == []


async def test_subscriptions_are_listed_in_pages(sim: Harness, rec: Receiver) -> None:
    """GET /subscriptions answers in pages with an `@odata.nextLink`, as Graph does (seen with
    a handful of subscriptions: msgraph-sdk-javascript#906); the page size is the tenant's
    `x-graphsim.subscriptionsPageSize` (100 unless set)."""
    sim.sim.state.x["subscriptionsPageSize"] = 2
    made = [(await sim.post("/subscriptions", json=sub_body(rec.url))).json()["id"] for _ in "abc"]
    first = (await sim.get("/subscriptions")).json()
    assert len(first["value"]) == 2
    second = (await sim.get(first["@odata.nextLink"])).json()
    assert "@odata.nextLink" not in second
    assert [s["id"] for s in first["value"] + second["value"]] == made
    assert all(s["clientState"] is None for s in first["value"] + second["value"])
