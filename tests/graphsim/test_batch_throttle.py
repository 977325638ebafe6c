"""$batch limits and sequencing, throttling (429 + Retry-After, also per batch item), faults."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsim.throttle import request_cost

from .conftest import G_SALES, USERS, Harness

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).parent / "graph-examples"


async def test_batch_runs_items_and_dependents_of_failures_get_424(sim: Harness) -> None:
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": "/users?$select=id&$top=2"},
            {"id": "2", "method": "GET", "url": f"/groups/{G_SALES}/members/x", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/organization", "dependsOn": ["2"]},
            {
                "id": "4",
                "method": "POST",
                "url": f"/users/{USERS[0]}/reprocessLicenseAssignment",
                "body": {},
                "headers": {"Content-Type": "application/json"},
            },
            {
                "id": "5",
                "method": "GET",
                "url": "users?$filter=assignedLicenses/$count ne 0&$count=true",
                "headers": {"ConsistencyLevel": "eventual"},
            },
        ]
    }
    r = await sim.post("/$batch", json=body)
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 200
    assert "@odata.nextLink" in by_id["1"]["body"]
    assert by_id["2"]["status"] == 400
    assert by_id["3"]["status"] == 424
    assert by_id["4"]["status"] == 200
    assert by_id["5"]["body"]["@odata.count"] == 6
    assert set(by_id["1"]) == {"id", "status", "headers", "body"}


async def test_batch_items_carry_headers_and_a_204_item_has_body_null(sim: Harness) -> None:
    """Item shape from Microsoft Learn, "Combine multiple HTTP requests using JSON batching"
    (https://learn.microsoft.com/graph/json-batching): every item has the `headers` the server
    returned (Cache-Control, x-ms-resource-unit, Content-Type; OData payloads also
    OData-Version and the full OData media type), and a 204 item answers `"body": null` (the
    page's PATCH example, `{"id": "4", "status": 204, "body": null}`)."""
    user = USERS[0]
    body = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{user}?$select=id"},
            {"id": "2", "method": "DELETE", "url": f"/groups/{G_SALES}/members/{user}/$ref"},
            {"id": "3", "method": "GET", "url": "/groups/00000000-0000-0000-0000-000000000000"},
        ]
    }
    r = await sim.post("/$batch", json=body)
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    ok, deleted, missing = by_id["1"], by_id["2"], by_id["3"]
    for item in (ok, deleted, missing):
        assert item["headers"]["Cache-Control"] == "no-cache"
        assert item["headers"]["x-ms-resource-unit"] == "1"
    assert ok["status"] == 200
    assert ok["headers"]["OData-Version"] == "4.0"
    assert ok["headers"]["Content-Type"].startswith("application/json;odata.metadata=minimal")
    assert ok["body"]["id"] == user
    assert deleted["status"] == 204
    assert "body" in deleted
    assert deleted["body"] is None
    assert "Content-Type" not in deleted["headers"]
    assert missing["status"] == 404
    assert missing["headers"]["Content-Type"] == "application/json"
    assert missing["body"]["error"]["code"] == "Request_ResourceNotFound"


async def test_batch_limits_and_malformed(sim: Harness) -> None:
    reqs = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
    r = await sim.post("/$batch", json={"requests": reqs})
    assert r.status_code == 400
    r = await sim.post("/$batch", json={"requests": reqs[:20]})
    assert r.status_code == 200
    assert len(r.json()["responses"]) == 20
    r = await sim.post("/$batch", json={"nope": []})
    assert r.status_code == 400
    dup = [{"id": "1", "method": "GET", "url": "/organization"}] * 2
    assert (await sim.post("/$batch", json={"requests": dup})).status_code == 400
    example = json.loads((EXAMPLES / "batch-request-dependson.json").read_text())
    for item in example["requests"]:
        item["url"] = "/organization"
    r = await sim.post("/$batch", json=example)
    assert [x["status"] for x in r.json()["responses"]] == [200, 200, 200, 200]


def test_request_costs_follow_the_documented_table() -> None:
    assert request_cost("GET", "/users", {}) == (2, False)
    assert request_cost("GET", "/users", {"$select": "id"}) == (1, False)
    assert request_cost("GET", "/groups/{id}/members", {"$top": "5"}) == (2, False)
    assert request_cost("GET", "/subscribedSkus", {}) == (3, False)
    assert request_cost("GET", "/groups", {"$expand": "members"}) == (2, False)
    assert request_cost("POST", "/groups/{id}/members/$ref", {}) == (1, True)
    assert request_cost("GET", "/organization", {"$select": "id", "$top": "1"}) == (1, False)


async def test_throttling_gives_429_with_retry_after_and_doc_body(sim: Harness) -> None:
    sim.sim.throttle.configure({"budget": 10, "windowSeconds": 100})
    statuses = []
    last = None
    for _ in range(8):
        last = await sim.get("/subscribedSkus")  # 3 units each
        statuses.append(last.status_code)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    assert last is not None
    assert int(last.headers["Retry-After"]) >= 1
    assert last.headers["x-ms-throttle-scope"].startswith("Tenant_Application/")
    assert last.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    example = json.loads((EXAMPLES / "throttled-429-response-body.json").read_text())
    err = last.json()["error"]
    assert set(err) == set(example["error"])
    assert set(err["innerError"]) >= set(example["error"]["innerError"])
    ok = await sim.http.get("/subscribedSkus", headers={"Authorization": "Bearer other-app"})
    assert ok.status_code == 200
    assert ok.headers["x-ms-resource-unit"] == "3"


async def test_the_audit_log_allows_five_requests_per_ten_seconds_per_app(sim: Harness) -> None:
    """The audit log is the identity and access reports service: five requests per 10 seconds
    per app per tenant, whatever they cost (learn.microsoft.com/graph/throttling-limits,
    "Identity and access reports service limits"); the directory's budget is apart."""
    sim.sim.throttle.configure({"clock": "sim"})
    audits = "/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Update group'"
    statuses = [(await sim.get(audits)).status_code for _ in range(5)]
    throttled = await sim.get(audits)
    assert statuses == [200] * 5
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert (await sim.get("/organization")).status_code == 200
    other_app = {"Authorization": "Bearer other-app"}
    assert (await sim.http.get(audits, headers=other_app)).status_code == 200
    sim.sim.advance(2)  # one request's share of the ten seconds
    assert (await sim.get(audits)).status_code == 200


async def test_low_priority_throttled_first_and_write_budget(sim: Harness) -> None:
    sim.sim.throttle.configure({"budget": 10, "windowSeconds": 100, "writeBudget": 2})
    low = {"x-ms-throttle-priority": "Low"}
    assert (await sim.get("/organization", headers=low)).status_code == 200
    for _ in range(7):  # 8 of 10 units used: Low is refused, Normal still served
        await sim.get("/organization")
    assert (await sim.get("/organization", headers=low)).status_code == 429
    assert (await sim.get("/organization")).status_code == 200
    sim.sim.throttle.configure({"budget": 1000})
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{USERS[7]}"}
    assert (await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref)).status_code == 204
    assert (await sim.http.delete(f"/groups/{G_SALES}/members/{USERS[7]}/$ref")).status_code == 204
    r = await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref)
    assert r.status_code == 429
    assert r.headers["x-ms-throttle-information"] == "WriteLimitExceeded"


async def test_batch_items_are_throttled_individually(sim: Harness) -> None:
    sim.sim.throttle.configure({"budget": 5, "windowSeconds": 100})
    reqs = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(8)]
    r = await sim.post("/$batch", json={"requests": reqs})
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}  # answered in any order
    items = [by_id[x["id"]] for x in reqs]
    assert [x["status"] for x in items] == [200] * 5 + [429] * 3
    assert int(items[-1]["headers"]["Retry-After"]) >= 1
    assert items[-1]["body"]["error"]["code"] == "TooManyRequests"


async def test_throttle_switch_and_sim_clock_refill(sim: Harness) -> None:
    sim.sim.throttle.configure({"budget": 2, "windowSeconds": 10, "clock": "sim"})
    assert (await sim.get("/organization")).status_code == 200
    assert (await sim.get("/organization")).status_code == 200
    assert (await sim.get("/organization")).status_code == 429
    sim.sim.advance(10)
    assert (await sim.get("/organization")).status_code == 200
    sim.sim.throttle.configure({"enabled": False})
    for _ in range(5):
        assert (await sim.get("/organization")).status_code == 200


async def test_seeded_faults(sim: Harness) -> None:
    sim.sim.faults.configure({"rate429": 0.3, "rate503": 0.2, "seed": 5})
    first = [(await sim.get("/organization")).status_code for _ in range(40)]
    sim.sim.faults.configure({"seed": 5})
    second = [(await sim.get("/organization")).status_code for _ in range(40)]
    assert first == second
    assert {200, 429, 503} == set(first)
    sim.sim.faults.configure({"rate429": 0, "rate503": 0, "resetRate": 1.0})
    with pytest.raises(ConnectionResetError):
        await sim.get("/organization")
    sim.sim.faults.configure({"resetRate": 0, "latencyMs": 30})
    assert (await sim.get("/organization")).status_code == 200


def test_connection_reset_over_real_http(sync_server: str) -> None:
    from graphsim.client import SimClient

    with SimClient(sync_server) as ctl, httpx.Client(headers={"Authorization": "Bearer t"}) as c:
        ctl.set_faults(resetRate=1.0)
        with pytest.raises(httpx.TransportError):
            c.get(f"{sync_server}/organization")
        ctl.set_faults(resetRate=0.0)
        assert c.get(f"{sync_server}/organization").status_code == 200


def test_a_percent_encoded_upn_in_a_batch_url_is_decoded_like_a_direct_request() -> None:
    """Graph resolves /users/{userPrincipalName}; a client that percent-encodes the '@' (the
    SDK's path encoding) gets the same user inside $batch as outside it."""
    from devhost.stack import GRAPH_TOKEN, load_tenant
    from graphsim.server import serve_in_thread

    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        response = httpx.post(
            f"{url}/$batch",
            headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
            json={
                "requests": [
                    {"id": "1", "method": "GET", "url": "/users/irvin.sayers%40contoso.com"}
                ]
            },
        )

    (item,) = response.json()["responses"]
    assert item["status"] == 200
    assert item["body"]["displayName"] == "Irvin Sayers"


async def test_fault_retry_after_may_be_fractional_as_graph_sends_it(sim: Harness) -> None:
    """Graph's Retry-After is seconds and may be fractional: the 429 example on
    learn.microsoft.com/graph/throttling answers `Retry-After: 2.128`. Whole seconds stay
    whole ("1", not "1.0")."""
    sim.sim.faults.configure({"next": ["429", "503", "429"], "retryAfter": 2.128})
    throttled = await sim.get("/organization")
    unavailable = await sim.get("/organization")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2.128")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "2.128")
    sim.sim.faults.configure({"retryAfter": 1})
    assert (await sim.get("/organization")).headers["Retry-After"] == "1"


async def test_batch_answers_its_items_in_another_order(
    sim: Harness, tenant: dict[str, Any]
) -> None:
    """Graph answers a batch's items in any order: the client matches them by `id`
    (learn.microsoft.com/graph/json-batching, "Response format": "the order in which the
    responses appear ... may not match the order of the requests"). graphsim's order is
    never the request order (for two items or more) and the same for the same seed."""
    reqs = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(1, 7)]
    orders = []
    for _ in range(2):
        r = await sim.post("/$batch", json={"requests": reqs})
        assert r.status_code == 200
        orders.append([x["id"] for x in r.json()["responses"]])
    for order in orders:
        assert sorted(order) == [x["id"] for x in reqs]
        assert order != [x["id"] for x in reqs]
    two = await sim.post("/$batch", json={"requests": reqs[:2]})
    assert [x["id"] for x in two.json()["responses"]] == ["2", "1"]
    again = Harness(copy.deepcopy(tenant))  # the same seed: the same order
    try:
        first = await again.post("/$batch", json={"requests": reqs})
        assert [x["id"] for x in first.json()["responses"]] == orders[0]
    finally:
        await again.close()
