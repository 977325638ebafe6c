"""GET /groups/delta: initial round, incremental rounds, removals, paging, filters, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import G_ONPREM, G_PLAIN, G_SALES, USERS, Harness

pytestmark = pytest.mark.anyio


def merged_members(objs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        out.setdefault(o["id"], []).extend(o.get("members@delta", []))
    return out


async def test_initial_round_lists_current_members(sim: Harness) -> None:
    objs, delta_link, _ = await sim.delta_round("/groups/delta?$select=members,displayName")
    members = merged_members(objs)
    assert [m["id"] for m in members[G_SALES]] == USERS[:4]
    assert all(m["@odata.type"] == "#microsoft.graph.user" for m in members[G_SALES])
    assert {o["displayName"] for o in objs} == {"Sales", "OnPrem", "Plain"}
    assert "$deltatoken=" in delta_link


async def test_incremental_round_reports_adds_and_removals(sim: Harness) -> None:
    _, link, _ = await sim.delta_round("/groups/delta?$select=members")
    sim.sim.state.add_member(G_SALES, USERS[7], "admin")
    sim.sim.state.remove_member(G_SALES, USERS[0], "admin")
    objs, link2, _ = await sim.delta_round(link)
    assert objs == [
        {
            "id": G_SALES,
            "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": USERS[7]},
                {
                    "@odata.type": "#microsoft.graph.user",
                    "id": USERS[0],
                    "@removed": {"reason": "deleted"},
                },
            ],
        }
    ]
    objs, _, _ = await sim.delta_round(link2)
    assert objs == []


async def test_filter_by_ids_and_limit_of_50(sim: Harness) -> None:
    url = f"/groups/delta?$select=members&$filter=id eq '{G_PLAIN}' or id eq '{G_ONPREM}'"
    objs, link, _ = await sim.delta_round(url)
    assert {o["id"] for o in objs} == {G_PLAIN, G_ONPREM}
    sim.sim.state.add_member(G_SALES, USERS[7], "admin")
    objs, _, _ = await sim.delta_round(link)
    assert objs == []  # Sales is outside the filter baked into the token
    many = " or ".join(f"id eq '{G_SALES}'" for _ in range(51))
    r = await sim.get(f"/groups/delta?$filter={many}")
    assert r.status_code == 400
    r = await sim.get("/groups/delta?$filter=displayName eq 'x'")
    assert r.status_code == 400
    r = await sim.get("/groups/delta?$top=5")
    assert r.status_code == 400


async def test_large_member_list_spans_pages(sim: Harness) -> None:
    sim.sim.state.x["deltaPageSize"] = 3
    objs, _, pages = await sim.delta_round("/groups/delta?$select=members")
    assert pages > 3
    assert sum(1 for o in objs if o["id"] == G_SALES) >= 2
    members = merged_members(objs)
    assert [m["id"] for m in members[G_SALES]] == USERS[:4]
    assert [m["id"] for m in members[G_ONPREM]] == USERS[4:6]


async def test_deleted_group_is_reported_removed(sim: Harness) -> None:
    _, link, _ = await sim.delta_round("/groups/delta?$select=members,displayName")
    r = await sim.http.delete(f"/groups/{G_PLAIN}")
    assert r.status_code == 204
    objs, _, _ = await sim.delta_round(link)
    assert objs == [{"id": G_PLAIN, "@removed": {"reason": "deleted"}}]
    r = await sim.http.delete(f"/groups/{G_SALES}")
    assert r.status_code == 400  # licensed groups cannot be deleted


async def test_property_change_reported_without_members(sim: Harness) -> None:
    _, link, _ = await sim.delta_round("/groups/delta?$select=assignedLicenses")
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    objs, link, _ = await sim.delta_round(link)
    assert objs == []  # members not selected: membership changes are not tracked
    sim.sim.state.set_group_licenses(
        G_PLAIN,
        [{"skuId": sim.sim.state.groups[G_SALES]["assignedLicenses"][0]["skuId"]}],
        [],
        "admin",
    )
    objs, _, _ = await sim.delta_round(link)
    assert [o["id"] for o in objs] == [G_PLAIN]
    assert "members@delta" not in objs[0]


async def test_an_expired_token_is_400_sync_state_not_found(sim: Harness) -> None:
    """Delta tokens for directory objects live 7 days; past that Graph answers BadRequest with
    code syncStateNotFound ("The sync state generation is not found. The delta token is expired
    and data must be synchronized again."): https://learn.microsoft.com/en-us/graph/delta-query-overview
    ("Token duration") and https://devblogs.microsoft.com/microsoft365dev/duration-of-change-tracking-tokens-for-identity-and-education-resources/"""
    _, link, _ = await sim.delta_round("/groups/delta?$select=members")
    sim.sim.advance(6 * 86400)
    _, link, _ = await sim.delta_round(link)  # still valid, and renewed
    sim.sim.advance(7 * 86400 + 1)
    r = await sim.get(link)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "syncStateNotFound"
    assert "expired" in r.json()["error"]["message"]
    assert "Location" not in r.headers


async def test_an_unknown_token_is_400_resync_required(sim: Harness) -> None:
    """A token the service never issued is a 40X error telling the client to resync
    (https://learn.microsoft.com/en-us/graph/delta-query-overview, "Token duration": "40X-series
    error with error codes such as syncStateNotFound"; resyncRequired is Graph's code for a
    delta token that is no longer valid)."""
    r = await sim.get("/groups/delta?$deltatoken=garbage")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "resyncRequired"


async def test_a_synchronization_reset_is_410_with_an_empty_token_location(sim: Harness) -> None:
    """Synchronization reset: 410 Gone with a Location header holding the delta URL with an
    empty $deltatoken, from which the client restarts a full synchronization
    (https://learn.microsoft.com/en-us/graph/delta-query-overview, "Synchronization reset")."""
    query = f"/groups/delta?$select=members&$filter=id eq '{G_PLAIN}'"
    _, link, _ = await sim.delta_round(query)
    sim.sim.state.reset_delta_sync()
    r = await sim.get(link)
    assert r.status_code == 410
    location = r.headers["Location"]
    assert location.endswith("&%24deltatoken=")
    assert "%24select=members" in location
    objs, again, _ = await sim.delta_round(location)  # restarting from it is a full round
    assert [o["id"] for o in objs] == [G_PLAIN]
    assert [m["id"] for m in objs[0]["members@delta"]] == [USERS[6]]
    assert (await sim.delta_round(again))[0] == []  # the restarted round's link works
    _, link, _ = await sim.delta_round("/groups/delta")
    sim.sim.reset()  # a tenant reset invalidates every token the same way
    assert (await sim.get(link)).status_code == 410


async def test_deltatoken_latest_gives_only_a_link(sim: Harness) -> None:
    r = await sim.get("/groups/delta?$select=members&$deltatoken=latest")
    body = r.json()
    assert body["value"] == []
    assert "@odata.deltaLink" in body
    sim.sim.state.add_member(G_PLAIN, USERS[7], "admin")
    objs, _, _ = await sim.delta_round(body["@odata.deltaLink"])
    assert [o["id"] for o in objs] == [G_PLAIN]


async def test_security_group_deletion_is_permanent_and_m365_deletion_is_soft(
    sim: Harness,
) -> None:
    """Security groups are deleted at once; Microsoft 365 groups go to deleted items for 30
    days (https://learn.microsoft.com/en-us/graph/api/group-delete). Delta marks the first
    `@removed: {"reason": "deleted"}` and the soft-deleted one `"changed"`
    (https://learn.microsoft.com/en-us/graph/api/group-delta: "changed" = the item was
    deleted and can be restored, "deleted" = deleted permanently)."""
    state = sim.sim.state
    state.groups[G_PLAIN]["groupTypes"] = ["Unified"]
    _, link, _ = await sim.delta_round("/groups/delta?$select=displayName,members")
    state.set_group_licenses(
        G_SALES, [], [state.groups[G_SALES]["assignedLicenses"][0]["skuId"]], "admin"
    )
    state.delete_group(G_SALES, "admin")
    state.delete_group(G_PLAIN, "admin")
    objs, link, _ = await sim.delta_round(link)
    removed = {o["id"]: o.get("@removed") for o in objs}
    assert removed == {G_SALES: {"reason": "deleted"}, G_PLAIN: {"reason": "changed"}}
    assert (await sim.get(f"/directory/deletedItems/{G_SALES}")).status_code == 404
    item = (await sim.get(f"/directory/deletedItems/{G_PLAIN}")).json()
    assert item["@odata.type"] == "#microsoft.graph.group"
    assert item["deletedDateTime"] == "2025-01-06T09:00:00Z"


async def test_restoring_a_soft_deleted_group_brings_its_members_back(sim: Harness) -> None:
    """POST /directory/deletedItems/{id}/restore returns the group
    (https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-restore), with its
    memberships; delta lists it again with its members, and a purged one (after 30 days) is
    404 (https://learn.microsoft.com/en-us/graph/api/resources/directory)."""
    state = sim.sim.state
    state.groups[G_PLAIN]["groupTypes"] = ["Unified"]
    _, link, _ = await sim.delta_round("/groups/delta?$select=displayName,members")
    state.delete_group(G_PLAIN, "admin")
    assert G_PLAIN not in {
        g["id"] for g in (await sim.get(f"/users/{USERS[6]}/memberOf")).json()["value"]
    }
    r = await sim.post(f"/directory/deletedItems/{G_PLAIN}/restore")
    assert r.status_code == 200
    assert r.json()["id"] == G_PLAIN
    assert "deletedDateTime" not in r.json()
    members = (await sim.get(f"/groups/{G_PLAIN}/members")).json()["value"]
    assert [m["id"] for m in members] == [USERS[6]]
    objs, _, _ = await sim.delta_round(link)
    assert [o["id"] for o in objs] == [G_PLAIN]
    assert "@removed" not in objs[0]
    assert objs[0]["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": USERS[6]}]
    state.delete_group(G_PLAIN, "admin")
    sim.sim.advance(31 * 86400)
    assert (await sim.post(f"/directory/deletedItems/{G_PLAIN}/restore")).status_code == 404


async def test_a_deletion_can_be_notified_as_updated(sim: Harness) -> None:
    """Real Graph has delivered a group deletion as changeType "updated" (seen in the field,
    issue 13; the docs list "deleted" for groups:
    https://learn.microsoft.com/en-us/graph/api/resources/change-notifications-api-overview).
    graphsim can do either (per deletion, or x-graphsim groupDeletedChangeType); delta says
    @removed in both cases."""
    seen: list[tuple[str, str]] = []
    sim.sim.state.on_group_change = lambda gid, ct: seen.append((gid, ct))
    _, link, _ = await sim.delta_round("/groups/delta?$select=members")
    sim.sim.state.delete_group(G_PLAIN, "admin", change_type="updated")
    assert seen == [(G_PLAIN, "updated")]
    objs, _, _ = await sim.delta_round(link)
    assert objs == [{"id": G_PLAIN, "@removed": {"reason": "deleted"}}]


async def test_delta_select_of_a_property_groups_lack_is_400(sim: Harness) -> None:
    """As on GET /groups: a misspelt property in the delta's $select (baked into every later
    link) is refused, not silently left out of each round."""
    r = await sim.get(f"/groups/delta?$select=members,assignedLicence&$filter=id eq '{G_SALES}'")
    assert r.status_code == 400, r.text
    assert "Could not find a property named 'assignedLicence'" in r.json()["error"]["message"]
    r = await sim.get(
        f"/groups/delta?$select=members,assignedLicenses,displayName&$filter=id eq '{G_SALES}'"
    )
    assert r.status_code == 200, r.text


async def test_members_leaving_during_an_initial_round_do_not_stall_its_pages(
    sim: Harness,
) -> None:
    """A page ends inside a group's member list; before the next page is asked for, that
    group's members leave. The round still ends (was: the next page resumed past the end of
    the shorter list, answered an empty page with the same nextLink, and so on forever)."""
    sim.sim.state.x["deltaPageSize"] = 3
    r = await sim.get(f"/groups/delta?$select=members&$filter=id eq '{G_SALES}'")
    body = r.json()
    [first] = body["value"]  # one group and the first two of its four members
    assert len(first["members@delta"]) == 2
    members = sim.sim.state.groups[first["id"]]["members"]
    assert len(members) == 4
    for member in list(members)[1:]:  # all but one leave
        sim.sim.state.remove_member(first["id"], member["id"], "admin", enforce_onprem=False)

    url = body["@odata.nextLink"]
    for _ in range(20):
        r = await sim.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        if "@odata.deltaLink" in page:
            break
        url = page["@odata.nextLink"]
    else:
        pytest.fail("the round never reached its deltaLink")
