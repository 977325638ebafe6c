"""Directory reads: auth, paging, $select/$top, filters and their ConsistencyLevel rules."""

from __future__ import annotations

import httpx
import pytest

from graphsim.app import create_app

from .conftest import E3, EMS, G_ONPREM, G_PLAIN, G_SALES, USERS, Harness, make_tenant

pytestmark = pytest.mark.anyio


async def test_missing_or_wrong_token_is_401_with_graph_error_shape() -> None:
    app = create_app(make_tenant(), token="only-this")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t/v1.0"
    ) as c:
        r = await c.get("/users")
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "InvalidAuthenticationToken"
        assert set(err["innerError"]) >= {"date", "request-id", "client-request-id"}
        r = await c.get("/users", headers={"Authorization": "Bearer other"})
        assert r.status_code == 401
        r = await c.get("/users", headers={"Authorization": "Bearer only-this"})
        assert r.status_code == 200
    await app.state.sim.close()


async def test_any_non_empty_token_when_none_configured(sim: Harness) -> None:
    r = await sim.http.get("/organization", headers={"Authorization": "Bearer x"})
    assert r.status_code == 200
    r = await sim.http.get("/organization", headers={"Authorization": "Bearer "})
    assert r.status_code == 401


async def test_paging_with_top_and_skiptoken_visits_every_user_once(sim: Harness) -> None:
    url: str | None = "/users?$select=id,assignedLicenses&$top=3"
    seen: list[str] = []
    pages = 0
    while url:
        r = await sim.get(url)
        assert r.status_code == 200
        body = r.json()
        assert body["@odata.context"].endswith("$metadata#users(id,assignedLicenses)")
        assert len(body["value"]) <= 3
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith("http://graphsim.test/v1.0/users?")
            assert "$skiptoken=" in url
        pages += 1
    assert seen == USERS
    assert pages == 3


async def test_a_page_token_older_than_its_lifetime_is_refused_as_graph_does(
    sim: Harness,
) -> None:
    """Graph refuses a directory page token once it has expired: 400
    `Directory_ExpiredPageToken` (no lifetime documented; graphsim's is
    `pageTokenLifetimeMinutes`, unset by default: tokens never expire)."""
    first = (await sim.get("/users?$select=id&$top=3")).json()
    sim.sim.advance(3 * 24 * 3600)
    assert (await sim.get(first["@odata.nextLink"])).status_code == 200  # default: no expiry
    sim.sim.state.x["pageTokenLifetimeMinutes"] = 60
    fresh = (await sim.get("/users?$select=id&$top=3")).json()
    sim.sim.advance(59 * 60)
    assert (await sim.get(fresh["@odata.nextLink"])).status_code == 200
    sim.sim.advance(2 * 60)
    stale = await sim.get(fresh["@odata.nextLink"])
    assert stale.status_code == 400
    assert stale.json()["error"]["code"] == "Directory_ExpiredPageToken"


async def test_an_empty_first_page_links_to_the_real_first_page(sim: Harness) -> None:
    """Graph may answer a page with no items and a nextLink (fault `emptyFirstPages`)."""
    sim.sim.faults.configure({"emptyFirstPages": ["/users"]})
    empty = await sim.get(
        "/users?$select=id&$top=3&$count=true", headers={"ConsistencyLevel": "eventual"}
    )
    body = empty.json()
    assert (empty.status_code, body["value"], body["@odata.count"]) == (200, [], len(USERS))
    seen: list[str] = []
    url: str | None = body["@odata.nextLink"]
    while url:
        page = (await sim.get(url)).json()
        seen += [u["id"] for u in page["value"]]
        url = page.get("@odata.nextLink")
    assert seen == USERS
    groups = (await sim.get("/groups?$select=id")).json()
    assert groups["value"]
    assert "@odata.nextLink" not in groups


async def test_default_page_is_100_and_top_is_capped_at_999(sim: Harness) -> None:
    r = await sim.get("/users?$top=1000")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_BadRequest"
    r = await sim.get("/users")
    assert len(r.json()["value"]) == len(USERS)
    assert "@odata.nextLink" not in r.json()


async def test_default_user_properties_exclude_licensing_fields(sim: Harness) -> None:
    user = (await sim.get(f"/users/{USERS[0]}")).json()
    assert "licenseAssignmentStates" not in user
    assert "assignedLicenses" not in user
    assert user["userPrincipalName"] == "user0@contoso.example"
    user = (await sim.get(f"/users/{USERS[0]}?$select=id,licenseAssignmentStates")).json()
    assert user["licenseAssignmentStates"][0]["assignedByGroup"] == G_SALES
    assert user["@odata.context"].endswith("/$entity")


async def test_user_by_upn_and_unknown_user(sim: Harness) -> None:
    r = await sim.get("/users/user1@contoso.example?$select=id")
    assert r.json()["id"] == USERS[1]
    r = await sim.get(f"/users/{USERS[0][:-1]}0")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize(
    "path", ["/groups/Sales", "/groups/Sales/members", "/groups/Sales/membersWithLicenseErrors"]
)
async def test_a_group_key_that_is_not_an_object_id_is_400_not_404(sim: Harness, path: str) -> None:
    """A group is found by its object id only: Graph answers a name (any key that is not a
    GUID) 400 Request_BadRequest "Invalid object identifier", as Graph Explorer showed for
    POST /groups/{id}/checkMemberObjects (microsoft-graph-docs-contrib#3854); an unknown
    GUID stays 404."""
    r = await sim.get(path)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_BadRequest"
    assert r.json()["error"]["message"] == "Invalid object identifier 'Sales'."
    unknown = await sim.get(path.replace("Sales", "00000000-0000-0000-0000-000000000000"))
    assert unknown.status_code == 404


async def test_count_filter_requires_consistency_level_and_count(sim: Harness) -> None:
    url = "/users?$filter=assignedLicenses/$count ne 0&$select=id"
    r = await sim.get(url)
    assert r.status_code == 400
    assert r.json()["error"] == {
        **r.json()["error"],
        "code": "Request_BadRequest",
        "message": "$count is not currently supported.",
    }
    r = await sim.get(url, headers={"ConsistencyLevel": "eventual"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_UnsupportedQuery"
    r = await sim.get(url + "&$count=true", headers={"ConsistencyLevel": "eventual"})
    assert r.status_code == 200
    assert r.json()["@odata.count"] == 6
    assert {u["id"] for u in r.json()["value"]} == set(USERS[:6])


async def test_id_in_and_sku_any_filters(sim: Harness) -> None:
    r = await sim.get(f"/users?$filter=id in ('{USERS[1]}','{USERS[7]}')&$select=id")
    assert [u["id"] for u in r.json()["value"]] == [USERS[1], USERS[7]]
    r = await sim.get(f"/users?$filter=assignedLicenses/any(s:s/skuId eq {EMS})&$select=id")
    assert [u["id"] for u in r.json()["value"]] == USERS[4:6]


async def test_unsupported_filter_is_400(sim: Harness) -> None:
    r = await sim.get("/users?$filter=endswith(mail,'x')")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "Request_UnsupportedQuery"


async def test_licensed_groups_filter_and_select(sim: Harness) -> None:
    r = await sim.get("/groups?$select=id,assignedLicenses&$filter=assignedLicenses/any()")
    body = r.json()
    assert {g["id"] for g in body["value"]} == {G_SALES, G_ONPREM}
    assert all(set(g) == {"id", "assignedLicenses"} for g in body["value"])


async def test_groups_with_license_errors_filter_and_never_returned(sim: Harness) -> None:
    r = await sim.get("/groups?$filter=hasMembersWithLicenseErrors eq true&$select=id")
    assert r.json()["value"] == []
    sim.sim.state.set_prepaid_units(E3, {"enabled": 4})
    sim.sim.state.add_member(G_SALES, USERS[7], "admin")
    await sim.settle()
    r = await sim.get(
        "/groups?$count=true&$filter=hasMembersWithLicenseErrors eq true"
        "&$select=id,hasMembersWithLicenseErrors",
        headers={"ConsistencyLevel": "eventual"},
    )
    assert r.json()["value"] == [{"id": G_SALES}]
    r = await sim.get(f"/groups/{G_SALES}/membersWithLicenseErrors?$select=id")
    assert [u["id"] for u in r.json()["value"]] == [USERS[7]]
    assert r.json()["value"][0]["@odata.type"] == "#microsoft.graph.user"


async def test_group_members_and_member_of(sim: Harness) -> None:
    r = await sim.get(f"/groups/{G_SALES}/members?$select=id,displayName&$top=2")
    body = r.json()
    assert [m["id"] for m in body["value"]] == USERS[:2]
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.user"
    r = await sim.get(body["@odata.nextLink"])
    assert [m["id"] for m in r.json()["value"]] == USERS[2:4]
    r = await sim.get(f"/users/{USERS[6]}/memberOf")
    assert [g["id"] for g in r.json()["value"]] == [G_PLAIN]
    assert r.json()["value"][0]["@odata.type"] == "#microsoft.graph.group"


ROLE = "62e90394-69f5-4237-9190-012177145e10"  # Global Administrator's role template id
UNIT = "4d3a8c1e-2b7f-4c59-9a0e-7f1d2c3b4a55"


async def test_member_of_lists_directory_roles_and_administrative_units_too() -> None:
    """`/users/{id}/memberOf` is the user's groups, directory roles and administrative units,
    told apart by `@odata.type` (learn.microsoft.com/graph/api/user-list-memberof, example
    response: a group and a directoryRole)."""
    tenant = make_tenant()
    tenant["directoryRoles"] = [
        {
            "id": ROLE,
            "displayName": "Global Administrator",
            "roleTemplateId": ROLE,
            "members": [USERS[6]],
        }
    ]
    tenant["administrativeUnits"] = [
        {"id": UNIT, "displayName": "Sales Europe", "members": [USERS[6], USERS[1]]}
    ]
    harness = Harness(tenant)
    try:
        r = await harness.get(f"/users/{USERS[6]}/memberOf?$select=id,displayName")
        value = r.json()["value"]
        assert [(o["@odata.type"], o["id"]) for o in value] == [
            ("#microsoft.graph.group", G_PLAIN),
            ("#microsoft.graph.directoryRole", ROLE),
            ("#microsoft.graph.administrativeUnit", UNIT),
        ]
        assert value[1] == {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": ROLE,
            "displayName": "Global Administrator",
        }
        r = await harness.get(f"/users/{USERS[0]}/memberOf?$select=id")
        assert "#microsoft.graph.directoryRole" not in {o["@odata.type"] for o in r.json()["value"]}
    finally:
        await harness.close()


async def test_group_licence_processing_state_is_select_only(sim: Harness) -> None:
    r = await sim.get(f"/groups/{G_SALES}")
    assert "licenseProcessingState" not in r.json()
    assert "members" not in r.json()
    r = await sim.get(f"/groups/{G_SALES}?$select=id,licenseProcessingState,assignedLicenses")
    assert r.json()["licenseProcessingState"] == {"state": "ProcessingComplete"}


async def test_skus_and_organization(sim: Harness) -> None:
    skus = (await sim.get("/subscribedSkus")).json()["value"]
    assert {s["skuId"]: s["consumedUnits"] for s in skus} == {E3: 4, EMS: 2}
    r = await sim.get("/subscribedSkus?$filter=skuId eq 'x'")
    assert r.status_code == 400
    org = (await sim.get("/organization?$select=id,onPremisesLastSyncDateTime")).json()["value"][0]
    assert org["onPremisesLastSyncDateTime"] == "2025-01-06T08:30:00Z"


async def test_unknown_segment_and_wrong_method(sim: Harness) -> None:
    r = await sim.get("/devices")
    assert r.status_code == 400
    r = await sim.http.put("/users")
    assert r.status_code == 405


async def test_audit_log_filter_and_actor(sim: Harness) -> None:
    sim.sim.state.clock.advance(3600)
    r = await sim.post(
        f"/groups/{G_PLAIN}/members/$ref",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{USERS[7]}"},
    )
    assert r.status_code == 204
    r = await sim.get("/auditLogs/directoryAudits?$filter=activityDateTime ge 2025-01-06T09:30:00Z")
    entries = r.json()["value"]
    assert [e["activityDisplayName"] for e in entries] == ["Add member to group"]
    assert entries[0]["initiatedBy"]["app"]["appId"]
    assert entries[0]["activityDateTime"] == "2025-01-06T10:00:00Z"
    assert {t["id"] for t in entries[0]["targetResources"]} == {USERS[7], G_PLAIN}


@pytest.mark.parametrize(
    ("url", "type_name"),
    [
        ("/users?$select=id,usageLocaton", "user"),
        (f"/users/{USERS[0]}?$select=id,licenseAssignmentState", "user"),
        ("/groups?$select=id,assignedLicense", "group"),
        (f"/groups/{G_SALES}?$select=id,licenseProcessingStatus", "group"),
        ("/subscribedSkus?$select=skuId,prepaidUnit", "subscribedSku"),
        ("/organization?$select=id,onPremisesLastSync", "organization"),
    ],
)
async def test_select_of_a_property_the_type_lacks_is_400(
    sim: Harness, url: str, type_name: str
) -> None:
    """Graph refuses a `$select` naming no property of the type; answering null for it let a
    misspelt name in the service's `$select` pass every test and fail in a real tenant."""
    r = await sim.get(url)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "Request_BadRequest"
    assert err["message"].startswith("Could not find a property named")
    assert f"on type 'microsoft.graph.{type_name}'" in err["message"]


async def test_select_of_the_services_properties_is_served(sim: Harness) -> None:
    """The service's own $select lists (restated) are all properties Graph knows."""
    user_select = (
        "id,userPrincipalName,displayName,usageLocation,accountEnabled,userType,"
        "onPremisesSyncEnabled,assignedLicenses,licenseAssignmentStates"
    )
    group_select = (
        "id,displayName,assignedLicenses,licenseProcessingState,onPremisesSyncEnabled,"
        "securityEnabled,groupTypes,membershipRule"
    )
    for url in (
        f"/users?$select={user_select}",
        f"/users/{USERS[0]}?$select={user_select}",
        f"/groups?$select={group_select}&$filter=assignedLicenses/any()",
        f"/groups/{G_SALES}?$select={group_select}",
        "/subscribedSkus?$select=skuId,skuPartNumber,appliesTo,capabilityStatus,consumedUnits,"
        "prepaidUnits,servicePlans",
        "/organization?$select=id,displayName,countryLetterCode,onPremisesSyncEnabled,"
        "onPremisesLastSyncDateTime,verifiedDomains",
    ):
        r = await sim.get(url)
        assert r.status_code == 200, (url, r.text)


DOLLAR_UPN = "$svc.o'neil@contoso.example"
"""A UPN that starts with `$` (allowed: prepare-for-directory-synchronization), with a quote."""


async def test_a_upn_starting_with_dollar_is_found_only_in_the_key_form() -> None:
    """learn.microsoft.com/graph/api/user-get: `/users/$x@y.com` violates the OData URL
    convention ($ prefixes system query options) and fails 400; the UPN goes in parentheses
    and single quotes instead, `/users('$x@y.com')` (a quote in it doubled, as in any OData
    string literal). Percent-encoding the `$` changes nothing: the URL is decoded first. The
    same holds for the segments after it and for `$batch` items."""
    tenant = make_tenant()
    tenant["users"][2]["userPrincipalName"] = DOLLAR_UPN
    harness = Harness(tenant)
    keyed = "/users('" + DOLLAR_UPN.replace("'", "''") + "')"
    for path in (f"/users/{DOLLAR_UPN}", "/users/%24svc.o'neil@contoso.example"):
        r = await harness.get(path + "?$select=id")
        assert r.status_code == 400, path
        assert r.json()["error"]["code"] == "BadRequest"
        assert "refers to a collection" in r.json()["error"]["message"]
    r = await harness.get(keyed + "?$select=id")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == USERS[2]
    r = await harness.get(keyed.replace("$", "%24") + "/memberOf?$select=id")
    assert r.status_code == 200, r.text
    assert (await harness.get("/users/$count", headers={"ConsistencyLevel": "eventual"})).text
    batch = await harness.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{DOLLAR_UPN}?$select=id"},
                {"id": "2", "method": "GET", "url": f"{keyed}?$select=id"},
            ]
        },
    )
    items = {i["id"]: i for i in batch.json()["responses"]}
    assert items["1"]["status"] == 400
    assert (items["2"]["status"], items["2"]["body"]["id"]) == (200, USERS[2])
    await harness.http.aclose()


async def test_a_path_without_the_api_version_is_graphs_invalid_version(sim: Harness) -> None:
    """`https://graph.microsoft.com/users` (a base URL without `/v1.0`): Graph answers 400
    BadRequest "Invalid version." (msgraph-sdk-dotnet#2023), JSON like any of its errors."""
    for url in ("http://graphsim.test/users", "http://graphsim.test/v2.0/users"):
        r = await sim.get(url)
        assert r.status_code == 400, url
        assert r.json()["error"]["code"] == "BadRequest"
        assert r.json()["error"]["message"] == "Invalid version."
