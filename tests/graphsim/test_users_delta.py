"""GET /users/delta against https://learn.microsoft.com/en-us/graph/api/user-delta and
https://learn.microsoft.com/en-us/graph/delta-query-users (default and $select shapes, paging
with nextLink/deltaLink, later rounds with only the changed users, token errors as in
https://learn.microsoft.com/en-us/graph/delta-query-overview)."""

from __future__ import annotations

import pytest

from .conftest import EMS, USER_DEFAULT_PROPERTIES, USERS, Harness, make_tenant

pytestmark = pytest.mark.anyio


async def test_initial_round_default_shape_and_paging() -> None:
    """Without $select the default properties come back, null where unset; pages end with a
    deltaLink."""
    h = Harness(make_tenant(deltaPageSize=3))
    try:
        users, link, pages = await h.delta_round("/users/delta")
        assert pages == 3  # 8 users, 3 a page
        assert [u["id"] for u in users] == USERS
        assert all(set(u) == USER_DEFAULT_PROPERTIES for u in users)
        assert "$deltatoken=" in link
    finally:
        await h.close()


async def test_select_and_later_rounds_list_only_changed_users(sim: Harness) -> None:
    """With $select: id plus the selected properties, kept in the links; a later round lists
    the users whose usage location, account state or licenses changed, once each."""
    select = "id,usageLocation,accountEnabled,assignedLicenses"
    users, link, _ = await sim.delta_round(f"/users/delta?$select={select}")
    assert set(users[0]) == {"id", "usageLocation", "accountEnabled", "assignedLicenses"}
    again, link, _ = await sim.delta_round(link)
    assert again == []

    state = sim.sim.state
    state.set_usage_location(USERS[6], "DE")
    state.set_account_enabled(USERS[5], False)
    body = {"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []}
    assert (await sim.post(f"/users/{USERS[6]}/assignLicense", json=body)).status_code == 200
    changed, link, _ = await sim.delta_round(link)
    assert sorted(u["id"] for u in changed) == sorted([USERS[5], USERS[6]])
    six = next(u for u in changed if u["id"] == USERS[6])
    assert six["usageLocation"] == "DE"
    assert [a["skuId"] for a in six["assignedLicenses"]] == [EMS]


async def test_latest_and_token_errors(sim: Harness) -> None:
    """$deltatoken=latest gives only a link; an unknown token is 400 resyncRequired, an expired
    one 400 syncStateNotFound, a reset one 410 Gone with an empty-token Location."""
    body = (await sim.get("/users/delta?$select=id&$deltatoken=latest")).json()
    assert body["value"] == []
    link = body["@odata.deltaLink"]
    assert (await sim.get("/users/delta?$deltatoken=garbage")).json()["error"]["code"] == (
        "resyncRequired"
    )
    sim.sim.state.reset_delta_sync()
    r = await sim.get(link)
    assert r.status_code == 410
    assert r.headers["Location"].endswith("/users/delta?%24select=id&%24deltatoken=")
    _, fresh, _ = await sim.delta_round(r.headers["Location"])
    sim.sim.advance(8 * 86400)
    r = await sim.get(fresh)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "syncStateNotFound")
