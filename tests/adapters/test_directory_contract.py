"""One contract for the `Directory` port, run against both implementations:

- `fake`: `FakeDirectory` in memory, changed through its mutators;
- `graph`: `GraphDirectory` (msgraph-sdk over HTTP) against graphsim on a loopback port,
  changed through graphsim's control client.

Each test body is written once against a small driver with the same methods on both sides.
The tenant is the demo snapshot plus 110 unlicensed users in a group of 120 members (and one
nested group), so member lists and delta rounds span pages (graphsim's delta page size and the
adapter's $top are lowered) and users_by_id needs several batches.

Audit entries, mail and time: the fake is built with graphsim's control-API admin as its default
actor (`SIM_ADMIN_UPN`) and a clock the driver can advance, so the same assertions hold on both.

The graph side also checks, after every test, that each endpoint graphsim counted is in the
permissions manifest (`shared.adapters.graph_permissions`).
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import orjson
import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_permissions import find_call
from shared.core.graph_values import processing_state
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import (
    DELTA_FILTER_LIMIT,
    USER_SELECT,
    DeltaTokenExpired,
    Directory,
    DirectoryError,
    SubscriptionRequest,
)
from shared.service.reconcile.scan import user_total
from tests.credentials import MintingCredential
from tests.demo_tenant import DEMO, E3_BASE, E3_TEAMS, EMS_E3, ENTERPRISEPACK, SALES_TEAM
from tests.graphsim.receiver import receiver
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio

TOKEN = "contract-test-token"
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"


def _gid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"directory-contract/{name}"))


SIM_ADMIN_UPN = "admin@graphsim.onmicrosoft.com"
"""Who graphsim's control API (the graph driver's hands) records in the audit log."""
AUDITED = ("Add member to group", "Remove member from group", "Set group license")

BIG = _gid("group/big")
EXTRA_USERS = [_gid(f"user/{i}") for i in range(110)]
UNKNOWN = [_gid(f"unknown/{i}") for i in range(3)]


def build_tenant() -> dict[str, Any]:
    tenant: dict[str, Any] = orjson.loads(DEMO.read_bytes())
    for i, uid in enumerate(EXTRA_USERS):
        tenant["users"].append(
            {
                "id": uid,
                "userPrincipalName": f"extra{i}@contoso.com",
                "displayName": f"Extra {i}",
                "usageLocation": "US",
                "accountEnabled": True,
                "userType": "Member",
                "onPremisesSyncEnabled": None,
                "assignedLicenses": [],
                "licenseAssignmentStates": [],
            }
        )
    demo_users = [u["id"] for u in tenant["users"][:10]]
    members = [{"@odata.type": USER_TYPE, "id": uid} for uid in EXTRA_USERS + demo_users]
    members.insert(50, {"@odata.type": GROUP_TYPE, "id": SALES_TEAM})
    tenant["groups"].append(
        {
            "id": BIG,
            "displayName": "All_Staff",
            "securityEnabled": True,
            "groupTypes": [],
            "membershipRule": None,
            "onPremisesSyncEnabled": None,
            "assignedLicenses": [],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": members,
        }
    )
    # small delta pages so one group's members span several pages (graphsim only)
    tenant["x-graphsim"] = {"deltaPageSize": 40}
    return tenant


TENANT = build_tenant()
USERS = {u["id"]: u for u in TENANT["users"]}
GROUPS = {g["id"]: g for g in TENANT["groups"]}


def user_members(gid: str) -> set[str]:
    return {m["id"] for m in GROUPS[gid]["members"] if m["@odata.type"] == USER_TYPE}


def _in_error(state: dict[str, Any]) -> bool:
    return state.get("state") == "Error" or state.get("error") not in (None, "", "None")


def error_members(gid: str) -> set[str]:
    return {
        uid
        for uid in user_members(gid)
        if any(
            s.get("assignedByGroup") == gid and _in_error(s)
            for s in USERS.get(uid, {}).get("licenseAssignmentStates") or []
        )
    }


def iso_in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def group_subscription(url: str, expiration: str, **fields: str) -> SubscriptionRequest:
    """A request for updates and deletions of /groups, both kinds of notification to `url`;
    `fields` replace the others (`client_state`, `change_type`, `resource`)."""
    request = SubscriptionRequest(
        resource="/groups",
        change_type="updated,deleted",
        notification_url=url,
        lifecycle_notification_url=url,
        client_state="secret-state",
        expiration=expiration,
    )
    return replace(request, **fields)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- drivers
class FakeDriver:
    name = "fake"

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.fake = FakeDirectory(
            copy.deepcopy(TENANT), now=self._now, page_size=50, admin_upn=SIM_ADMIN_UPN
        )
        self.directory: Directory = self.fake
        self.notification_url = "https://example.invalid/api/notify"

    def _now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def now(self) -> str:
        return self._now().isoformat()

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def sent(self) -> list[dict[str, Any]]:
        return [
            {
                "from": m["sender"],
                "subject": m["message"].get("subject"),
                "to": [r["emailAddress"]["address"] for r in m["message"]["toRecipients"]],
                "headers": m["message"].get("internetMessageHeaders") or [],
                "saveToSentItems": m["saveToSentItems"],
            }
            for m in self.fake.sent_mail
        ]

    def fail_send_mail(self, status: int, retry_after: float) -> None:
        self.fake.fail_next_send_mail(status, retry_after)

    def clear_faults(self) -> None:
        pass

    def add_member(self, gid: str, uid: str) -> None:
        self.fake.add_member(gid, uid)

    def remove_member(self, gid: str, uid: str) -> None:
        self.fake.remove_member(gid, uid)

    def set_group_licenses(self, gid: str, assigned: list[dict[str, Any]]) -> None:
        self.fake.set_group_licenses(gid, assigned)

    def delete_group(self, gid: str) -> None:
        self.fake.delete_group(gid)

    def expire_delta_tokens(self) -> None:
        self.fake.expire_delta_tokens()

    def reset_delta_sync(self) -> None:
        self.fake.reset_delta_sync()

    def protect(self, uid: str) -> None:
        """The user joins a restricted management administrative unit."""
        self.fake.protected_users |= {uid}


class GraphDriver:
    name = "graph"

    def __init__(self, directory: GraphDirectory, sim: SimClient, notification_url: str) -> None:
        self.directory: Directory = directory
        self.graph = directory
        self.sim = sim
        self.notification_url = notification_url

    def protect(self, uid: str) -> None:
        self.sim.set_protected(uid)

    def add_member(self, gid: str, uid: str) -> None:
        self.sim.add_member(gid, uid, force=True)

    def remove_member(self, gid: str, uid: str) -> None:
        self.sim.remove_member(gid, uid, force=True)

    def set_group_licenses(self, gid: str, assigned: list[dict[str, Any]]) -> None:
        self.sim.replace_group_licenses(gid, assigned)

    def delete_group(self, gid: str) -> None:
        self.sim.delete_group(gid, permanent=True)

    def expire_delta_tokens(self) -> None:
        self.sim.advance_clock(days=8)  # directory delta tokens live 7 days

    def reset_delta_sync(self) -> None:
        self.sim.reset_delta_sync()

    def now(self) -> str:
        return self.sim.now()

    def advance(self, seconds: float) -> None:
        self.sim.advance_clock(seconds=seconds)

    def sent(self) -> list[dict[str, Any]]:
        return [
            {
                "from": m["from"],
                "subject": m["subject"],
                "to": m["toRecipients"],
                "headers": m["internetMessageHeaders"],
                "saveToSentItems": m["saveToSentItems"],
            }
            for m in self.sim.outbox()
        ]

    def fail_send_mail(self, status: int, retry_after: float) -> None:
        # every request fails: the SDK's retry handler gives up after its retries
        self.sim.set_faults(**{f"rate{status}": 1.0, "retryAfter": retry_after, "seed": 1})

    def clear_faults(self) -> None:
        self.sim.set_faults(rate429=0, rate503=0)


Driver = FakeDriver | GraphDriver


def unlisted_endpoints(sim: SimClient) -> list[str]:
    """Endpoints graphsim counted that the permissions manifest does not list."""
    missing = []
    for key in sim.counters():
        method, _, path = key.partition(" ")
        if not path or find_call(method, path) is None:
            missing.append(key)
    return missing


async def graph_directory(url: str, **kwargs: Any) -> GraphDirectory:
    return GraphDirectory(build_graph_client(url, static_token=TOKEN), page_size=50, **kwargs)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["fake", "graph"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    if request.param == "fake":
        yield FakeDriver()
        return
    with (
        serve_in_thread(copy.deepcopy(TENANT)) as url,
        SimClient(url) as sim,
        receiver() as rec,
    ):
        directory = await graph_directory(url)
        try:
            yield GraphDriver(directory, sim, rec.url)
        finally:
            await directory.aclose()
        assert unlisted_endpoints(sim) == [], (
            "calls missing from shared/adapters/graph_permissions.py"
        )


# --------------------------------------------------------------------------- reads
async def test_licensed_groups(driver: Driver) -> None:
    configs = await driver.directory.licensed_group_configs()
    by_id = {g.id: g for g in configs}
    assert set(by_id) == {E3_BASE, E3_TEAMS, EMS_E3}
    base = by_id[E3_BASE]
    assert base.display_name == "Licensing_Office365_E3_Base"
    assert [a.sku_id for a in base.licenses] == [ENTERPRISEPACK]
    assert base.licensed
    expected = processing_state(GROUPS[E3_BASE].get("licenseProcessingState"))
    assert expected is not None  # the state is selected and read
    assert base.processing_state == expected
    assert base.security_enabled == GROUPS[E3_BASE].get("securityEnabled")


async def test_groups_by_id_leaves_unknown_ids_out(driver: Driver) -> None:
    found = await driver.directory.group_configs([SALES_TEAM, BIG, UNKNOWN[0]])
    assert set(found) == {SALES_TEAM, BIG}
    assert found[BIG].display_name == "All_Staff"
    assert found[SALES_TEAM].licenses == ()
    assert not found[SALES_TEAM].licensed


async def test_groups_by_id_finds_an_id_in_any_case(driver: Driver) -> None:
    """Graph finds a group by its GUID whatever the case: the config carries the stored,
    lower-case id."""
    found = await driver.directory.group_configs([BIG.upper(), UNKNOWN[0].upper()])
    assert set(found) == {BIG}
    assert found[BIG].display_name == "All_Staff"


async def test_groups_by_a_key_that_is_not_an_object_id_is_refused(driver: Driver) -> None:
    """A group is read by its object id: Graph answers a name 400 "Invalid object identifier"
    (microsoft-graph-docs-contrib#3854), not a 404 to leave out, so a caller holding something
    else where a group id would be (a poisoned message's digest) must not ask."""
    with pytest.raises(DirectoryError) as err:
        await driver.directory.group_configs([SALES_TEAM, "All_Staff"])
    assert (err.value.status, err.value.code) == (400, "Request_BadRequest")


async def test_group_member_ids_reads_every_page_and_only_users(driver: Driver) -> None:
    ids = await driver.directory.group_member_ids(BIG)
    assert len(ids) == 120
    assert set(ids) == user_members(BIG)
    assert SALES_TEAM not in ids


async def test_group_member_ids_of_unknown_group_is_404(driver: Driver) -> None:
    with pytest.raises(DirectoryError) as err:
        await driver.directory.group_member_ids(UNKNOWN[0])
    assert err.value.status == 404
    assert not err.value.is_transient


# --------------------------------------------------------------------------- delta
async def test_delta_initial_round_lists_all_members_merged_across_pages(driver: Driver) -> None:
    rnd = await driver.directory.group_delta([BIG, E3_BASE, UNKNOWN[0]], None)
    assert rnd.initial
    assert rnd.delta_link
    assert set(rnd.groups) == {BIG, E3_BASE}
    assert rnd.groups[BIG].added == user_members(BIG)
    assert rnd.groups[E3_BASE].added == user_members(E3_BASE)
    assert rnd.groups[BIG].removed == frozenset()
    assert rnd.groups[E3_BASE].display_name == "Licensing_Office365_E3_Base"
    assert [a.sku_id for a in rnd.groups[E3_BASE].licenses or ()] == [ENTERPRISEPACK]
    assert not rnd.groups[BIG].deleted


async def test_delta_incremental_join_and_leave(driver: Driver) -> None:
    first = await driver.directory.group_delta([BIG, EMS_E3], None)
    quiet = await driver.directory.group_delta([], first.delta_link)
    assert not quiet.initial
    assert dict(quiet.groups) == {}
    joiner = next(u for u in USERS if u not in user_members(EMS_E3) | user_members(E3_TEAMS))
    leaver = sorted(user_members(BIG))[0]
    driver.add_member(EMS_E3, joiner)
    driver.remove_member(BIG, leaver)
    driver.add_member(E3_TEAMS, joiner)  # not in this round's filter
    rnd = await driver.directory.group_delta([BIG, EMS_E3], quiet.delta_link)
    assert not rnd.initial
    assert set(rnd.groups) == {BIG, EMS_E3}
    assert rnd.groups[EMS_E3].added == {joiner}
    assert rnd.groups[EMS_E3].removed == frozenset()
    assert rnd.groups[BIG].removed == {leaver}
    assert rnd.groups[BIG].added == frozenset()
    after = await driver.directory.group_delta([BIG, EMS_E3], rnd.delta_link)
    assert dict(after.groups) == {}


async def test_delta_reports_license_changes_and_deleted_groups(driver: Driver) -> None:
    first = await driver.directory.group_delta([SALES_TEAM, E3_TEAMS], None)
    assigned = [{"skuId": ENTERPRISEPACK, "disabledPlans": []}]
    driver.set_group_licenses(E3_TEAMS, assigned)
    driver.delete_group(SALES_TEAM)
    rnd = await driver.directory.group_delta([SALES_TEAM, E3_TEAMS], first.delta_link)
    assert rnd.groups[SALES_TEAM].deleted
    teams = rnd.groups[E3_TEAMS]
    assert not teams.deleted
    assert teams.licenses is not None
    assert [a.sku_id for a in teams.licenses] == [ENTERPRISEPACK]
    assert teams.licenses[0].disabled_plans == frozenset()
    assert await driver.directory.group_configs([SALES_TEAM]) == {}


async def test_a_soft_deleted_group_reads_as_deleted_and_its_restore_as_joins(
    driver: Driver,
) -> None:
    """graphsim only: a Microsoft 365 group's soft delete (delta `@removed.reason` "changed",
    notified as "updated") is a deletion to the port; restoring it brings its members back as
    joins."""
    if not isinstance(driver, GraphDriver):
        pytest.skip("soft delete and restore are graphsim's")
    first = await driver.directory.group_delta([SALES_TEAM], None)
    driver.sim.delete_group(SALES_TEAM, permanent=False, change_type="updated")
    gone = await driver.directory.group_delta([SALES_TEAM], first.delta_link)
    assert gone.groups[SALES_TEAM].deleted
    driver.sim.restore_group(SALES_TEAM)
    back = await driver.directory.group_delta([SALES_TEAM], gone.delta_link)
    assert not back.groups[SALES_TEAM].deleted
    assert back.groups[SALES_TEAM].added == user_members(SALES_TEAM)


async def test_delta_reports_nested_groups_apart_from_users(driver: Driver) -> None:
    first = await driver.directory.group_delta([BIG], None)
    assert first.groups[BIG].nested_added == {SALES_TEAM}
    assert SALES_TEAM not in first.groups[BIG].added
    driver.remove_member(BIG, SALES_TEAM)
    rnd = await driver.directory.group_delta([BIG], first.delta_link)
    assert rnd.groups[BIG].nested_removed == {SALES_TEAM}
    assert rnd.groups[BIG].removed == set()


async def test_delta_expired_token_raises(driver: Driver) -> None:
    first = await driver.directory.group_delta([EMS_E3], None)
    driver.expire_delta_tokens()
    with pytest.raises(DeltaTokenExpired) as err:
        await driver.directory.group_delta([EMS_E3], first.delta_link)
    assert (err.value.status, err.value.code) == (400, "syncStateNotFound")
    again = await driver.directory.group_delta([EMS_E3], None)  # the full resync works
    assert again.groups[EMS_E3].added == user_members(EMS_E3)


async def test_delta_after_a_synchronization_reset_raises(driver: Driver) -> None:
    first = await driver.directory.group_delta([EMS_E3], None)
    driver.reset_delta_sync()
    with pytest.raises(DeltaTokenExpired) as err:
        await driver.directory.group_delta([EMS_E3], first.delta_link)
    assert err.value.status == 410
    again = await driver.directory.group_delta([EMS_E3], None)
    assert again.groups[EMS_E3].added == user_members(EMS_E3)


async def test_delta_with_an_unknown_token_raises(driver: Driver) -> None:
    first = await driver.directory.group_delta([EMS_E3], None)
    forged = first.delta_link.split("$deltatoken=")[0] + "$deltatoken=bm90LWEtdG9rZW4"
    with pytest.raises(DeltaTokenExpired) as err:
        await driver.directory.group_delta([EMS_E3], forged)
    assert (err.value.status, err.value.code) == (400, "resyncRequired")


async def test_delta_takes_at_most_fifty_ids(driver: Driver) -> None:
    ids = [_gid(f"many/{i}") for i in range(DELTA_FILTER_LIMIT + 1)]
    with pytest.raises(ValueError, match="50"):
        await driver.directory.group_delta(ids, None)


# --------------------------------------------------------------------------- users
async def test_users_by_id_batches_and_leaves_unknown_ids_out(driver: Driver) -> None:
    wanted = EXTRA_USERS[:40] + list(USERS)[:5] + UNKNOWN
    found = await driver.directory.users_by_id(wanted)
    assert set(found) == set(EXTRA_USERS[:40] + list(USERS)[:5])
    first_demo = next(iter(USERS))
    got = found[first_demo]
    src = USERS[first_demo]
    assert set(got) >= set(USER_SELECT.split(","))
    for key in ("userPrincipalName", "usageLocation", "assignedLicenses"):
        assert got[key] == src[key]
    assert got["licenseAssignmentStates"] == src["licenseAssignmentStates"]


async def test_users_by_id_finds_an_id_in_any_case(driver: Driver) -> None:
    """Graph finds a user by its GUID whatever the case (an admin pastes one from PowerShell):
    the answer is keyed by the id as asked and carries the stored, lower-case id."""
    asked = [EXTRA_USERS[0].upper(), next(iter(USERS)), UNKNOWN[0].upper()]
    found = await driver.directory.users_by_id(asked)
    assert set(found) == set(asked[:2])
    assert found[asked[0]]["id"] == EXTRA_USERS[0]
    assert found[asked[0]]["userPrincipalName"] == "extra0@contoso.com"


async def test_users_by_id_finds_a_user_by_upn_in_any_case(driver: Driver) -> None:
    """`GET /users/{id | userPrincipalName}`: a UPN finds the user too, whatever its case
    (`license-guard reprocess --user UPN`), keyed by the UPN as asked."""
    asked = ["Extra1@Contoso.com", "nobody@contoso.com"]
    found = await driver.directory.users_by_id(asked)
    assert set(found) == {asked[0]}
    assert found[asked[0]]["id"] == EXTRA_USERS[1]


async def test_users_by_id_finds_nothing_for_a_key_that_names_no_single_user(
    driver: Driver,
) -> None:
    """An empty key (`/users/` is the collection) or one with a `/` (a relationship: Graph
    decodes `%2F` as a separator) names no user: left out, as an unknown id."""
    user = EXTRA_USERS[0]
    found = await driver.directory.users_by_id(["", f"{user}/memberOf", user])
    assert set(found) == {user}


async def test_member_of_lists_direct_groups(driver: Driver) -> None:
    users = [*list(USERS)[:3], EXTRA_USERS[0], UNKNOWN[1]]
    got = await driver.directory.member_of(users)
    assert set(got) == set(users) - {UNKNOWN[1]}
    for uid in got:
        expected = {gid for gid in GROUPS if uid in user_members(gid)}
        assert set(got[uid]) == expected
    assert got[EXTRA_USERS[0]] == [BIG]


async def test_member_of_finds_an_id_in_any_case(driver: Driver) -> None:
    """Keyed by the id as asked (an upper-case GUID finds the user, as in Graph)."""
    asked = [EXTRA_USERS[0].upper(), UNKNOWN[1].upper()]
    assert await driver.directory.member_of(asked) == {asked[0]: [BIG]}


async def test_users_page_reads_every_user_across_pages(driver: Driver) -> None:
    seen: list[str] = []
    pages = 0
    link: str | None = None
    while True:
        page, link = await driver.directory.users_page(link)
        pages += 1
        for user in page:
            assert set(user) >= set(USER_SELECT.split(","))
            seen.append(user["id"])
        if link is None:
            break
        assert link.startswith(("http", "fake:"))
    assert pages == -(-len(USERS) // 50)  # $top 50 on both sides
    assert len(seen) == len(set(seen)) == len(USERS)
    assert set(seen) == set(USERS)


async def test_user_count_is_the_number_of_users_the_pages_read(driver: Driver) -> None:
    # graph side: graphsim answers 400 without `ConsistencyLevel: eventual`, so this also
    # checks that the adapter sends it (and reads Graph's text/plain number)
    assert await driver.directory.user_count() == len(USERS)


async def test_users_page_keeps_the_select_on_every_page(driver: Driver) -> None:
    page, link = await driver.directory.users_page(None, select="id,userPrincipalName")
    assert link is not None
    second, _ = await driver.directory.users_page(link, select="id,userPrincipalName")
    for user in page + second:
        assert {"id", "userPrincipalName"} <= set(user)
        assert "licenseAssignmentStates" not in user
        assert user["userPrincipalName"] == USERS[user["id"]]["userPrincipalName"]


async def test_group_members_page_reads_every_page_and_only_users(driver: Driver) -> None:
    ids: list[str] = []
    nested: list[str] = []
    pages = 0
    link: str | None = None
    while True:
        page, link = await driver.directory.group_members_page(BIG, link, nested=nested)
        pages += 1
        ids.extend(page)
        if link is None:
            break
    assert pages == 3  # 121 members (one a group), 50 a page
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == user_members(BIG)
    assert SALES_TEAM not in ids
    assert nested == [SALES_TEAM]  # the nested group, when asked for
    with pytest.raises(DirectoryError) as err:
        await driver.directory.group_members_page(UNKNOWN[0], None)
    assert err.value.status == 404


# --------------------------------------------------------------------------- audit log
async def test_directory_audits_since_a_time(driver: Driver) -> None:
    early = EXTRA_USERS[-1]
    driver.remove_member(BIG, early)  # before `since`: left out
    driver.advance(5)
    since = driver.now()
    driver.advance(2)  # Graph stamps whole seconds: keep the changes clearly after `since`
    joiner = next(u for u in USERS if u not in user_members(EMS_E3))
    leaver = EXTRA_USERS[0]
    driver.add_member(EMS_E3, joiner)
    driver.remove_member(BIG, leaver)
    assigned = [{"skuId": ENTERPRISEPACK, "disabledPlans": []}]
    driver.set_group_licenses(E3_TEAMS, assigned)

    found = await driver.directory.directory_audits(since, AUDITED)
    assert sorted(e.activity for e in found) == sorted(AUDITED)
    by_activity = {e.activity: e for e in found}
    for entry in found:
        assert entry.actor == SIM_ADMIN_UPN
        assert not entry.by_app
        assert parse(entry.when) >= parse(since.replace("+00:00", "Z"))
        assert entry.id
    added = by_activity["Add member to group"]
    assert added.target_ids == (joiner, EMS_E3)
    assert [t.type for t in added.targets] == ["User", "Group"]
    assert added.targets[0].user_principal_name == USERS[joiner]["userPrincipalName"]
    assert by_activity["Remove member from group"].target_ids == (leaver, BIG)
    lic = by_activity["Set group license"]
    assert lic.target_ids == (E3_TEAMS,)
    assert lic.category == "GroupManagement"
    times = [parse(e.when) for e in found]
    assert times == sorted(times, reverse=True)  # newest first

    only = await driver.directory.directory_audits(since, ["Remove member from group"])
    assert [e.target_ids for e in only] == [(leaver, BIG)]
    everything = await driver.directory.directory_audits(since)
    assert {e.id for e in found} <= {e.id for e in everything}
    assert all(early not in e.target_ids for e in everything)
    assert await driver.directory.directory_audits(iso_in(1), AUDITED) == []


# --------------------------------------------------------------------------- mail
SENDER = str(TENANT["users"][0]["userPrincipalName"])
"""A mailbox of the tenant (graphsim accepts a user id or a UPN as the sender)."""


def alert_message(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "subject": "License Guard: 3 users without E3",
        "body": {"contentType": "HTML", "content": "<p>3 users are waiting for seats.</p>"},
        "toRecipients": [
            {"emailAddress": {"address": "it-licensing@contoso.com"}},
            {"emailAddress": {"address": "ops@contoso.com", "name": "Ops"}},
        ],
        "internetMessageHeaders": [{"name": "X-License-Guard-Run", "value": "nightly-42"}],
    }
    message.update(changes)
    return message


async def test_send_mail_arrives_without_saving_to_sent_items(driver: Driver) -> None:
    sender = SENDER
    await driver.directory.send_mail(sender, alert_message())
    sent = driver.sent()
    assert sent == [
        {
            "from": sender,
            "subject": "License Guard: 3 users without E3",
            "to": ["it-licensing@contoso.com", "ops@contoso.com"],
            "headers": [{"name": "X-License-Guard-Run", "value": "nightly-42"}],
            "saveToSentItems": False,
        }
    ]
    await driver.directory.send_mail(sender, alert_message(), save_to_sent_items=True)
    assert driver.sent()[1]["saveToSentItems"] is True


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (alert_message(toRecipients=[]), "ErrorInvalidRecipients"),
        (
            alert_message(toRecipients=[{"emailAddress": {"address": "not-an-address"}}]),
            "ErrorInvalidRecipients",
        ),
        (
            alert_message(internetMessageHeaders=[{"name": "Run", "value": "1"}]),
            "InvalidInternetMessageHeader",
        ),
    ],
)
async def test_send_mail_rejects_a_malformed_message(
    driver: Driver, message: dict[str, Any], code: str
) -> None:
    with pytest.raises(DirectoryError) as err:
        await driver.directory.send_mail(SENDER, message)
    assert err.value.status == 400
    assert err.value.code == code
    assert not err.value.is_transient
    assert driver.sent() == []


async def test_send_mail_from_an_unknown_mailbox_is_404(driver: Driver) -> None:
    with pytest.raises(DirectoryError) as err:
        await driver.directory.send_mail("nobody@contoso.com", alert_message())
    assert err.value.status == 404
    assert driver.sent() == []


async def test_send_mail_throttled_raises_429_with_retry_after(driver: Driver) -> None:
    driver.fail_send_mail(429, retry_after=1)
    try:
        with pytest.raises(DirectoryError) as err:
            await driver.directory.send_mail(SENDER, alert_message())
    finally:
        driver.clear_faults()
    assert err.value.status == 429
    assert err.value.retry_after == 1.0
    assert err.value.is_transient
    assert driver.sent() == []
    await driver.directory.send_mail(SENDER, alert_message())  # later it goes through
    assert len(driver.sent()) == 1


def alert_mime(
    message_id: str = "<lg.1@contoso.com>", to: str = "it-licensing@contoso.com"
) -> bytes:
    mail = EmailMessage()
    mail["Subject"] = "License Guard: 3 users without E3"
    mail["From"] = SENDER
    if to:
        mail["To"] = to
    mail["Message-ID"] = message_id
    mail["x-license-guard-digest"] = "digest-42"
    mail.set_content("3 users are waiting for seats.")
    mail.add_alternative("<p>3 users are waiting for seats.</p>", subtype="html")
    return bytes(mail)


async def test_a_mime_draft_is_found_by_its_message_id_and_sent_once(driver: Driver) -> None:
    """Create message (MIME: base64, text/plain; 201, the draft in Drafts), list the Drafts
    folder filtered on internetMessageId, send (202; the draft then leaves Drafts, so its id
    answers 404 ErrorItemNotFound): https://learn.microsoft.com/graph/api/user-post-messages,
    https://learn.microsoft.com/graph/api/mailfolder-list-messages,
    https://learn.microsoft.com/graph/api/message-send."""
    draft = await driver.directory.create_draft(SENDER, alert_mime())
    assert await driver.directory.find_draft(SENDER, "<lg.1@contoso.com>") == draft
    assert await driver.directory.find_draft(SENDER, "<other@contoso.com>") is None
    assert driver.sent() == []  # a draft is not sent
    assert await driver.directory.send_draft(SENDER, draft) is True
    assert await driver.directory.send_draft(SENDER, draft) is False  # sent: gone from Drafts
    assert await driver.directory.find_draft(SENDER, "<lg.1@contoso.com>") is None
    [sent] = driver.sent()
    assert sent["subject"] == "License Guard: 3 users without E3"
    assert sent["to"] == ["it-licensing@contoso.com"]
    assert {"name": "x-license-guard-digest", "value": "digest-42"} in sent["headers"]
    assert sent["saveToSentItems"] is True  # message-send saves to Sent Items


async def test_a_draft_is_deleted_once_and_not_sent(driver: Driver) -> None:
    """DELETE message (204; Mail.ReadWrite; then 404 ErrorItemNotFound):
    https://learn.microsoft.com/graph/api/message-delete. A sent draft is no longer there."""
    draft = await driver.directory.create_draft(SENDER, alert_mime())
    assert await driver.directory.delete_draft(SENDER, draft) is True
    assert await driver.directory.find_draft(SENDER, "<lg.1@contoso.com>") is None
    assert await driver.directory.delete_draft(SENDER, draft) is False
    assert await driver.directory.send_draft(SENDER, draft) is False
    sent = await driver.directory.create_draft(SENDER, alert_mime())
    assert await driver.directory.send_draft(SENDER, sent) is True
    assert await driver.directory.delete_draft(SENDER, sent) is False
    assert len(driver.sent()) == 1


async def test_a_draft_needs_a_recipient_and_a_known_mailbox(driver: Driver) -> None:
    with pytest.raises(DirectoryError) as err:
        await driver.directory.create_draft(SENDER, alert_mime(to=""))
    assert (err.value.status, err.value.code) == (400, "ErrorInvalidRecipients")
    with pytest.raises(DirectoryError) as err:
        await driver.directory.create_draft("nobody@contoso.com", alert_mime())
    assert err.value.status == 404
    with pytest.raises(DirectoryError) as err:
        await driver.directory.send_draft("nobody@contoso.com", "AAMk-unknown")
    assert err.value.status == 404
    assert driver.sent() == []


# --------------------------------------------------------------------------- tenant
async def test_subscribed_skus(driver: Driver) -> None:
    skus = await driver.directory.subscribed_skus()
    assert {s["skuId"] for s in skus} == {s["skuId"] for s in TENANT["subscribedSkus"]}
    e3 = next(s for s in skus if s["skuId"] == ENTERPRISEPACK)
    src = next(s for s in TENANT["subscribedSkus"] if s["skuId"] == ENTERPRISEPACK)
    assert e3["skuPartNumber"] == src["skuPartNumber"]
    assert e3["prepaidUnits"] == src["prepaidUnits"]
    assert e3["consumedUnits"] == src["consumedUnits"]
    assert [p["servicePlanId"] for p in e3["servicePlans"]] == [
        p["servicePlanId"] for p in src["servicePlans"]
    ]


async def test_organization(driver: Driver) -> None:
    org = await driver.directory.organization()
    assert org is not None
    src = TENANT["organization"][0]
    for key in ("id", "displayName", "countryLetterCode", "onPremisesLastSyncDateTime"):
        assert org[key] == src[key]


async def test_license_errors(driver: Driver) -> None:
    expected = {gid for gid in GROUPS if error_members(gid)}
    assert expected == {E3_BASE, E3_TEAMS, EMS_E3}
    assert set(await driver.directory.groups_with_license_errors()) == expected
    for gid in [*expected, BIG]:
        got = await driver.directory.members_with_license_errors(gid)
        assert set(got) == error_members(gid), gid
    assert await driver.directory.members_with_license_errors(UNKNOWN[0]) == []


async def test_reprocess(driver: Driver) -> None:
    uid = next(iter(error_members(EMS_E3)))
    assert await driver.directory.reprocess_license_assignment(uid) is True
    assert await driver.directory.reprocess_license_assignment(UNKNOWN[2]) is False
    if isinstance(driver, FakeDriver):
        assert driver.fake.reprocessed == [uid]


async def test_reprocess_of_a_protected_user_is_refused_as_a_missing_permission(
    driver: Driver,
) -> None:
    """Graph answers a user out of the app's reach (a restricted management administrative
    unit's member) with the 403 a missing permission gets; the other users are reprocessed."""
    protected, other = sorted(error_members(EMS_E3))[:2]
    driver.protect(protected)
    with pytest.raises(DirectoryError) as err:
        await driver.directory.reprocess_license_assignment(protected.upper())
    assert (err.value.status, err.value.code) == (403, "Authorization_RequestDenied")
    assert await driver.directory.reprocess_license_assignment(other) is True


async def test_app_roles_are_not_known_from_a_static_token(driver: Driver) -> None:
    assert await driver.directory.app_roles() is None


async def test_reprocess_finds_an_id_in_any_case(driver: Driver) -> None:
    uid = next(iter(error_members(EMS_E3)))
    assert await driver.directory.reprocess_license_assignment(uid.upper()) is True
    assert await driver.directory.reprocess_license_assignment(UNKNOWN[2].upper()) is False
    if isinstance(driver, FakeDriver):
        assert driver.fake.reprocessed == [uid]


# --------------------------------------------------------------------------- subscriptions
async def test_subscription_lifecycle(driver: Driver) -> None:
    d = driver.directory
    assert await d.subscriptions() == []
    url = driver.notification_url
    sub = await d.create_subscription(group_subscription(url, iso_in(1)))
    assert sub.id
    assert sub.resource == "/groups"
    assert sub.change_type == "updated,deleted"
    assert sub.notification_url == url
    assert sub.lifecycle_notification_url == url
    assert abs(parse(sub.expiration) - parse(iso_in(1))) < timedelta(minutes=1)
    listed = await d.subscriptions()
    assert [s.id for s in listed] == [sub.id]
    renewed = await d.renew_subscription(sub.id, iso_in(2))
    assert renewed.id == sub.id
    assert abs(parse(renewed.expiration) - parse(iso_in(2))) < timedelta(minutes=1)
    fetched = await d.subscription(sub.id)
    assert fetched is not None
    assert (fetched.id, fetched.expiration) == (renewed.id, renewed.expiration)
    await d.reauthorize_subscription(sub.id)
    await d.delete_subscription(sub.id)
    assert await d.subscriptions() == []
    assert await d.subscription(sub.id) is None  # Graph answers 404: gone
    await d.delete_subscription(sub.id)  # already gone: fine
    with pytest.raises(DirectoryError) as err:
        await d.renew_subscription(sub.id, iso_in(2))
    assert err.value.status == 404


async def test_a_subscription_not_renewed_is_deleted_at_its_expiration(driver: Driver) -> None:
    """Graph deletes a subscription when it expires: not listed, 404 to a read, a renewal or a
    reauthorization (the keeper and the lifecycle handler count on this)."""
    d = driver.directory
    sub = await d.create_subscription(group_subscription(driver.notification_url, iso_in(1)))
    kept = await d.create_subscription(group_subscription(driver.notification_url, iso_in(2)))
    driver.advance(timedelta(days=1, minutes=1).total_seconds())

    assert [s.id for s in await d.subscriptions()] == [kept.id]
    assert await d.subscription(sub.id) is None
    with pytest.raises(DirectoryError) as renewal:
        await d.renew_subscription(sub.id, iso_in(2))
    with pytest.raises(DirectoryError) as reauthorization:
        await d.reauthorize_subscription(sub.id)
    assert (renewal.value.status, reauthorization.value.status) == (404, 404)
    await d.delete_subscription(sub.id)  # already gone: fine


async def test_a_subscription_expiry_under_45_minutes_is_set_to_45_minutes(
    driver: Driver,
) -> None:
    """Graph: "Any value under 45 minutes after the time of the request is automatically set to
    45 minutes after the request time" (subscription resource, expirationDateTime; msgraph-sdk
    models): kept, not refused, and not kept as given, on a creation and on a renewal."""
    d = driver.directory
    minutes = 1 / (24 * 60)
    sub = await d.create_subscription(
        group_subscription(driver.notification_url, iso_in(10 * minutes))
    )
    assert abs(parse(sub.expiration) - parse(iso_in(45 * minutes))) < timedelta(minutes=1)
    renewed = await d.renew_subscription(sub.id, iso_in(5 * minutes))
    assert abs(parse(renewed.expiration) - parse(iso_in(45 * minutes))) < timedelta(minutes=1)
    await d.delete_subscription(sub.id)


async def test_subscription_expiry_beyond_the_limit_is_rejected(driver: Driver) -> None:
    request = group_subscription(
        driver.notification_url, iso_in(40), change_type="updated", client_state="s"
    )
    with pytest.raises(DirectoryError) as err:
        await driver.directory.create_subscription(request)
    assert err.value.status == 400


# --------------------------------------------------------------------------- Graph only
@pytest.fixture
async def graphsim() -> AsyncIterator[tuple[str, SimClient]]:
    with serve_in_thread(copy.deepcopy(TENANT)) as url, SimClient(url) as sim:
        yield url, sim
        assert unlisted_endpoints(sim) == []


def statuses(sim: SimClient, key: str) -> dict[str, int]:
    return sim.counters().get(key, {})


@contextmanager
def throttled(sim: SimClient, **faults: Any) -> Iterator[None]:
    """graphsim answers with `faults` inside the block; its 429s are off again after it."""
    sim.set_faults(**faults)
    try:
        yield
    finally:
        sim.set_faults(rate429=0)


async def test_graph_429_on_a_plain_call_is_retried_by_the_middleware(
    graphsim: tuple[str, SimClient],
) -> None:
    url, sim = graphsim
    with throttled(sim, rate429=0.5, retryAfter=1, seed=3):
        async with await graph_directory(url) as directory:
            started = time.monotonic()
            orgs = [await directory.organization() for _ in range(3)]
            elapsed = time.monotonic() - started
    assert all(o is not None and o["id"] == TENANT["organization"][0]["id"] for o in orgs)
    seen = statuses(sim, "GET /organization")
    assert seen.get("429", 0) >= 1
    assert seen["200"] == 3
    assert elapsed >= seen["429"] * 1.0 - 0.05  # waited Retry-After each time


async def test_graph_fractional_retry_after_is_waited_out_by_the_middleware(
    graphsim: tuple[str, SimClient],
) -> None:
    """Graph may send Retry-After in fractional seconds (`2.128` in the 429 example on
    learn.microsoft.com/graph/throttling). Kiota's retry handler reads only whole seconds or a
    date, and took its own ~3-4 s backoff instead: a retry before the time Graph named, which
    Graph throttles again (usage keeps counting while throttled)."""
    url, sim = graphsim
    with throttled(sim, next=["429"], retryAfter=4.5):
        async with await graph_directory(url) as directory:
            started = time.monotonic()
            org = await directory.organization()
            elapsed = time.monotonic() - started
    assert org is not None
    assert statuses(sim, "GET /organization") == {"429": 1, "200": 1}
    assert elapsed >= 4.5


async def test_graph_429_inside_batch_is_resent_after_retry_after(
    graphsim: tuple[str, SimClient],
) -> None:
    url, sim = graphsim
    sleep = Sleeps()

    with throttled(sim, rate429=0.3, retryAfter=2, seed=5):
        async with await graph_directory(url, sleep=sleep) as directory:
            found = await directory.users_by_id(EXTRA_USERS[:45] + UNKNOWN)
    assert set(found) == set(EXTRA_USERS[:45])
    seen = statuses(sim, "GET /users/{id}")
    assert seen.get("429", 0) >= 1
    assert sleep.waits
    assert all(w == 2.0 for w in sleep.waits)  # the items' own Retry-After
    assert statuses(sim, "POST /$batch")["200"] >= 3 + len(sleep.waits)  # 48 items: 3 batches


async def test_graph_batch_items_still_throttled_raise_a_transient_error(
    graphsim: tuple[str, SimClient],
) -> None:
    url, sim = graphsim
    sleep = Sleeps()

    with throttled(sim, rate429=1.0, retryAfter=3, seed=1):
        async with await graph_directory(url, sleep=sleep, max_batch_resends=2) as directory:
            with pytest.raises(DirectoryError) as err:
                await directory.users_by_id(EXTRA_USERS[:5])
    assert err.value.status == 429
    assert err.value.is_transient
    assert err.value.retry_after == 3.0
    assert sleep.waits == [3.0, 3.0]


async def test_graph_503_faults_give_the_same_results(graphsim: tuple[str, SimClient]) -> None:
    url, sim = graphsim

    async def read_all(directory: GraphDirectory) -> list[Any]:
        rnd = await directory.group_delta([BIG, EMS_E3], None)
        return [
            sorted(g.id for g in await directory.licensed_group_configs()),
            sorted(await directory.group_member_ids(BIG)),
            {gid: sorted(g.added) for gid, g in rnd.groups.items()},
            sorted(await directory.users_by_id(EXTRA_USERS[:25])),
            await directory.member_of(list(USERS)[:4]),
        ]

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    async with await graph_directory(url, sleep=no_wait) as directory:
        clean = await read_all(directory)
        sim.clear_counters()
        sim.set_faults(rate503=0.15, retryAfter=1, seed=11)
        faulty = await read_all(directory)
        sim.set_faults(rate503=0)
    assert faulty == clean
    assert sum(c.get("503", 0) for c in sim.counters().values()) >= 1


async def test_graph_sends_reprocess_with_low_priority(graphsim: tuple[str, SimClient]) -> None:
    """graphsim refuses Low-priority calls once 80% of the budget is used (Normal at 100%):
    with 2 of 10 units left the reprocess is throttled once, then retried after Retry-After."""
    url, sim = graphsim
    sim.set_throttle(enabled=True, budget=10, windowSeconds=10, clock="real")
    async with await graph_directory(url) as directory:
        for _ in range(8):
            await directory.organization()
        assert await directory.reprocess_license_assignment(next(iter(USERS))) is True
    sim.set_throttle(budget=None)
    assert statuses(sim, "POST /users/{id}/reprocessLicenseAssignment") == {"429": 1, "200": 1}
    assert "401" not in sim.counters()


async def test_graph_reads_are_retried_after_a_dropped_connection(
    graphsim: tuple[str, SimClient],
) -> None:
    """The SDK retries 429/503/504, not a reset or a stale keep-alive: the adapter does, with
    backoff, for reads; a write whose answer was lost is not repeated blindly."""
    url, sim = graphsim
    sleep = Sleeps()

    sim.set_faults(next=["reset", "reset"])
    async with await graph_directory(url, sleep=sleep) as directory:
        org = await directory.organization()
        assert org is not None
        assert sleep.waits == [0.5, 1.0]
        sim.set_faults(next=["applyReset"])
        with pytest.raises(DirectoryError) as err:
            await directory.reprocess_license_assignment(next(iter(USERS)))
    assert err.value.is_transient
    assert statuses(sim, "POST /users/{id}/reprocessLicenseAssignment") == {"200+applyReset": 1}


async def test_graph_dropped_connection_is_a_transient_directory_error(
    graphsim: tuple[str, SimClient],
) -> None:
    url, sim = graphsim
    sim.set_faults(resetRate=1.0, seed=2)
    async with await graph_directory(url) as directory:
        with pytest.raises(DirectoryError) as err:
            await directory.organization()
    sim.set_faults(resetRate=0)
    assert err.value.status == 503
    assert err.value.is_transient


async def test_graph_user_count_refused_is_a_directory_error_the_scan_goes_on_without() -> None:
    """`GET /users/$count` refused (403: the token has no user-read role) raises
    `DirectoryError`, nothing else, so the scan's `user_total` falls back to no total."""
    secret = "contract-test-count-secret-0123456789"
    groups_only = MintingCredential(secret, claims={"roles": ["GroupMember.Read.All"]})
    with serve_in_thread(copy.deepcopy(TENANT), token=secret) as url:
        client = build_graph_client(url, credential=groups_only)
        async with GraphDirectory(client) as directory:
            with pytest.raises(DirectoryError) as err:
                await directory.user_count()
            assert await user_total(directory) is None
            assert await directory.licensed_group_configs()  # the rest of the scan still reads
    assert (err.value.status, err.value.code) == (403, "Authorization_RequestDenied")


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        (
            {"roles": ["User.ReadWrite.All", "Group.Read.All"]},
            {"User.ReadWrite.All", "Group.Read.All"},
        ),
        ({"roles": None}, set()),  # an app token without the claim holds no app role
        ({"roles": None, "scp": "User.Read"}, None),  # a user's token: its scopes apply
    ],
)
async def test_graph_app_roles_come_from_the_token_the_client_signs_with(
    claims: dict[str, Any], roles: set[str] | None
) -> None:
    """`app_roles` reads the token the auth provider attaches to Graph requests, no request."""
    secret = "contract-test-roles-secret-0123456789"
    credential = MintingCredential(secret, claims=claims)
    with serve_in_thread(copy.deepcopy(TENANT), token=secret) as url, SimClient(url) as sim:
        async with GraphDirectory(build_graph_client(url, credential=credential)) as directory:
            got = await directory.app_roles()
        assert sim.counters() == {}
    assert got == (None if roles is None else frozenset(roles))
    assert credential.requests == [("https://graph.microsoft.com/.default",)]
