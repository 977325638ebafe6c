"""Group changes: classify group ids, run the delta partitions, send users on to recompute."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DELTA_FILTER_LIMIT
from shared.ports.messages import DeltaSweep, GroupsChanged, RecomputeUsers, format_timestamp
from shared.ports.queues import RECOMPUTE_USERS
from shared.ports.tables import Entity, EntityStore, EntityValue, Upserts
from shared.service.groups import UNLICENSED_TTL, handle_group_changes
from shared.service.stores import PARTITION_PK, GroupMembers, LicensedGroups
from tests.demo_tenant import (
    ADELE,
    ALEX,
    DIEGO,
    E3_BASE,
    E3_TEAMS,
    EMS_E3,
    ENTERPRISEPACK,
    LYNNE,
    SALES_TEAM,
)
from tests.reliability.harness import CrashRecorder, SimulatedCrash
from tests.service.world import World, build_world, demo_snapshot, recomputed_users

pytestmark = pytest.mark.anyio


def changed(*group_ids: str) -> GroupsChanged:
    return GroupsChanged(
        group_ids=group_ids,
        correlation_id="test-correlation",
        received_at=format_timestamp(datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
    )


def sweep() -> DeltaSweep:
    return DeltaSweep(reason="test sweep", correlation_id="test-sweep")


async def settled(world: World) -> World:
    """After a first sweep: groups learned, members stored, recompute queue empty."""
    await handle_group_changes(world.svc, sweep())
    world.messages(RECOMPUTE_USERS)
    world.directory.requests.clear()
    return world


def many_licensed_groups(count: int) -> tuple[dict[str, Any], list[str]]:
    """The demo tenant plus `count` E3 groups with Alex as their only member."""
    snapshot = demo_snapshot()
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"group-changes/{i}")) for i in range(count)]
    for i, group_id in enumerate(ids):
        snapshot["groups"].append(
            {
                "id": group_id,
                "displayName": f"Licensing_E3_Extra_{i:02d}",
                "assignedLicenses": [{"skuId": ENTERPRISEPACK, "disabledPlans": []}],
                "licenseProcessingState": {"state": "ProcessingComplete"},
                "members": [{"@odata.type": "#microsoft.graph.user", "id": ALEX}],
            }
        )
    return snapshot, ids


async def test_the_first_run_learns_the_licensed_groups_and_partitions_them(
    world: World,
) -> None:
    outcome = await handle_group_changes(world.svc, sweep())

    licensed = LicensedGroups(world.svc.tables.deltalinks)
    assert set(licensed.configs()) == {E3_BASE, E3_TEAMS, EMS_E3}
    [partition] = licensed.partitions()
    assert set(partition.group_ids) == {E3_BASE, E3_TEAMS, EMS_E3}
    assert partition.delta_link is not None
    assert outcome.partitions_run == [0]
    stored = GroupMembers(world.svc.tables.groupmembers)
    for group_id in (E3_BASE, E3_TEAMS, EMS_E3):
        assert stored.members(group_id) == set(world.directory.group_member_ids_now(group_id))
    assert SALES_TEAM not in partition.group_ids


async def test_more_than_fifty_licensed_groups_fill_partitions_of_at_most_fifty() -> None:
    snapshot, extra = many_licensed_groups(60)
    world = build_world(snapshot)

    await handle_group_changes(world.svc, sweep())

    partitions = LicensedGroups(world.svc.tables.deltalinks).partitions()
    assert [len(p.group_ids) for p in partitions] == [DELTA_FILTER_LIMIT, 13]
    placed = [g for p in partitions for g in p.group_ids]
    assert sorted(placed) == sorted({E3_BASE, E3_TEAMS, EMS_E3, *extra})


async def test_an_unlicensed_group_is_ignored_and_not_looked_up_again_within_the_ttl(
    world: World,
) -> None:
    await settled(world)

    first = await handle_group_changes(world.svc, changed(SALES_TEAM))
    world.clock.advance(60)
    second = await handle_group_changes(world.svc, changed(SALES_TEAM))

    assert first.ignored == [SALES_TEAM]
    assert second.ignored == [SALES_TEAM]
    assert world.directory.requests["group_configs"] == 1
    assert world.directory.requests["group_delta"] == 0
    assert recomputed_users(world) == set()


async def test_an_unlicensed_group_is_looked_up_again_once_the_ttl_has_passed(
    world: World,
) -> None:
    await settled(world)
    await handle_group_changes(world.svc, changed(SALES_TEAM))

    world.clock.advance(UNLICENSED_TTL.total_seconds() + 1)
    await handle_group_changes(world.svc, changed(SALES_TEAM))

    assert world.directory.requests["group_configs"] == 2


async def test_a_newly_licensed_group_joins_a_partition_and_its_members_are_recomputed(
    world: World,
) -> None:
    await settled(world)
    world.directory.set_group_licenses(SALES_TEAM, [{"skuId": ENTERPRISEPACK, "disabledPlans": []}])

    outcome = await handle_group_changes(world.svc, changed(SALES_TEAM))

    assert outcome.newly_licensed == [SALES_TEAM]
    [partition] = LicensedGroups(world.svc.tables.deltalinks).partitions()
    assert SALES_TEAM in partition.group_ids
    assert recomputed_users(world) == {LYNNE}  # Lynne is only in Sales_Team


async def test_a_member_added_to_a_licensed_group_is_sent_to_recompute(world: World) -> None:
    await settled(world)
    world.directory.add_member(E3_TEAMS, ADELE)

    outcome = await handle_group_changes(world.svc, changed(E3_TEAMS))

    [msg] = world.messages(RECOMPUTE_USERS)
    assert isinstance(msg, RecomputeUsers)
    assert msg.user_ids == (ADELE,)
    assert msg.correlation_id == "test-correlation"
    assert outcome.joined == 1
    assert ADELE in GroupMembers(world.svc.tables.groupmembers).members(E3_TEAMS)


async def test_a_member_removed_from_a_licensed_group_is_sent_to_recompute(
    world: World,
) -> None:
    await settled(world)
    world.directory.remove_member(E3_BASE, DIEGO)

    outcome = await handle_group_changes(world.svc, changed(E3_BASE))

    assert recomputed_users(world) == {DIEGO}
    assert outcome.left == 1
    assert DIEGO not in GroupMembers(world.svc.tables.groupmembers).members(E3_BASE)


async def test_a_license_change_on_a_group_recomputes_all_its_members(world: World) -> None:
    await settled(world)
    world.directory.set_group_licenses(
        E3_TEAMS,
        [{"skuId": ENTERPRISEPACK, "disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"]}],
    )

    outcome = await handle_group_changes(world.svc, changed(E3_TEAMS))

    [msg] = world.messages(RECOMPUTE_USERS)
    assert isinstance(msg, RecomputeUsers)
    assert set(msg.user_ids) == set(world.directory.group_member_ids_now(E3_TEAMS))
    assert msg.group_ids == (E3_TEAMS,)
    assert outcome.license_changed == [E3_TEAMS]
    stored = LicensedGroups(world.svc.tables.deltalinks).configs()[E3_TEAMS]
    assert stored.licenses[0].disabled_plans == {"57ff2da0-773e-42df-b2af-ffb7a2317929"}


async def test_a_deleted_licensed_group_recomputes_its_members_and_is_forgotten(
    world: World,
) -> None:
    await settled(world)
    members = set(world.directory.group_member_ids_now(E3_TEAMS))
    world.directory.delete_group(E3_TEAMS)

    await handle_group_changes(world.svc, changed(E3_TEAMS))

    assert recomputed_users(world) == members
    assert E3_TEAMS not in LicensedGroups(world.svc.tables.deltalinks).configs()


@pytest.mark.parametrize(
    "lose_link",
    [FakeDirectory.expire_delta_tokens, FakeDirectory.reset_delta_sync],
    ids=["expired-token", "synchronization-reset"],
)
async def test_a_lost_delta_link_resyncs_in_full_and_still_finds_leavers(
    world: World, lose_link: Callable[[FakeDirectory], None]
) -> None:
    """An expired token, or 410 Gone (a reset, handled alike): one full round from scratch."""
    await settled(world)
    world.directory.remove_member(E3_BASE, DIEGO)
    lose_link(world.directory)

    outcome = await handle_group_changes(world.svc, sweep())

    assert outcome.resynced == [0]
    assert recomputed_users(world) == {DIEGO}
    assert DIEGO not in GroupMembers(world.svc.tables.groupmembers).members(E3_BASE)
    again = await handle_group_changes(world.svc, sweep())  # the new link works
    assert again.resynced == []


async def test_a_sweep_with_nothing_changed_recomputes_nobody(world: World) -> None:
    await settled(world)

    outcome = await handle_group_changes(world.svc, sweep())

    assert outcome.partitions_run == [0]
    assert recomputed_users(world) == set()


async def test_a_sweep_runs_every_partition() -> None:
    snapshot, _ = many_licensed_groups(60)
    world = await settled(build_world(snapshot))

    outcome = await handle_group_changes(world.svc, sweep())

    assert sorted(outcome.partitions_run) == [0, 1]
    assert world.directory.requests["group_delta"] == 2


async def test_a_notification_for_one_group_runs_only_that_groups_partition() -> None:
    snapshot, _ = many_licensed_groups(60)
    world = await settled(build_world(snapshot))
    partitions = LicensedGroups(world.svc.tables.deltalinks).partitions()
    second = partitions[1]
    group_id = second.group_ids[0]
    world.directory.add_member(group_id, ADELE)

    outcome = await handle_group_changes(world.svc, changed(group_id))

    assert outcome.partitions_run == [1]
    assert world.directory.requests["group_delta"] == 1
    assert recomputed_users(world) == {ADELE}


async def test_a_sweep_recomputes_the_members_of_a_group_that_lost_its_licenses(
    world: World,
) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="c1"))
    members = GroupMembers(world.svc.tables.groupmembers).members(EMS_E3)
    world.directory.set_group_licenses(EMS_E3, [])

    outcome = await handle_group_changes(world.svc, DeltaSweep(reason="again", correlation_id="c2"))

    assert members
    assert EMS_E3 in outcome.license_changed
    assert members <= outcome.users
    assert EMS_E3 not in LicensedGroups(world.svc.tables.deltalinks).configs()


def open_nested(world: World) -> dict[str, dict[str, Any]]:
    return {
        str(e.fields["key"]): dict(e.fields)
        for e in world.svc.tables.findings.query_all()
        if e.fields.get("code") == "NestedGroupMember" and not e.fields.get("resolvedAt")
    }


async def test_a_nested_group_seen_by_delta_is_reported_then_resolved(world: World) -> None:
    """The demo nests Sales_Team in the E3 Base group: the first (initial) delta round's
    group-type members@delta make a NestedGroupMember on Base, counting Sales_Team's one user
    who gets nothing; nesting EMS too changes it, and undoing both resolves it."""
    await settled(world)
    found = open_nested(world)
    assert [k.split("|")[0] for k in found] == [f"group:{E3_BASE}"]
    (first,) = found.values()
    assert "Sales_Team" in str(first["message"])
    assert "1 user(s) in 'Sales_Team' get nothing" in str(first["message"])
    # E3 Base is synced from on-premises: its membership is changed there, not in Entra
    assert "synced from on-premises" in str(first["remedy"])
    assert "Entra admin center" not in str(first["remedy"])

    world.directory.add_member(E3_BASE, EMS_E3)
    await handle_group_changes(world.svc, changed(E3_BASE))
    pairs = open_nested(world)  # one finding per licensed group x nested group
    assert sorted(k.rsplit("|", 1)[1] for k in pairs) == sorted([SALES_TEAM, EMS_E3])
    assert any("Licensing_Office365_EMS_E3" in str(f["message"]) for f in pairs.values())

    world.directory.remove_member(E3_BASE, EMS_E3)
    await handle_group_changes(world.svc, changed(E3_BASE))
    assert [k.rsplit("|", 1)[1] for k in open_nested(world)] == [SALES_TEAM]
    world.directory.add_member(E3_BASE, EMS_E3)

    world.directory.remove_member(E3_BASE, SALES_TEAM)
    world.directory.remove_member(E3_BASE, EMS_E3)
    await handle_group_changes(world.svc, changed(E3_BASE))
    assert open_nested(world) == {}


async def test_a_nested_group_licensed_with_the_same_products_is_not_reported() -> None:
    """Sales_Team, nested in E3 Base, assigns E3 Base's licenses itself: its user gets them
    from it, so nobody is left out and no NestedGroupMember is opened."""
    snapshot = demo_snapshot()
    groups = {g["id"]: g for g in snapshot["groups"]}
    groups[SALES_TEAM]["assignedLicenses"] = groups[E3_BASE]["assignedLicenses"]
    world = await settled(build_world(snapshot))

    assert open_nested(world) == {}


async def test_a_sweep_recomputes_the_members_of_a_group_whose_licenses_changed(
    world: World,
) -> None:
    """The notification was lost: the sweep is what must find the license change."""
    await settled(world)
    world.directory.set_group_licenses(
        E3_TEAMS,
        [{"skuId": ENTERPRISEPACK, "disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"]}],
    )

    outcome = await handle_group_changes(world.svc, sweep())

    assert outcome.license_changed == [E3_TEAMS]
    assert recomputed_users(world) == set(world.directory.group_member_ids_now(E3_TEAMS))


async def licenses_taken_and_given_back(world: World, group_id: str) -> set[str]:
    """The group's licenses removed (that change handled), then given back (not yet seen);
    the group's members."""
    await settled(world)
    members = set(world.directory.group_member_ids_now(group_id))
    licenses = world.directory.groups[group_id]["assignedLicenses"]
    world.directory.set_group_licenses(group_id, [])
    await handle_group_changes(world.svc, changed(group_id))
    world.messages(RECOMPUTE_USERS)
    world.directory.set_group_licenses(group_id, licenses)
    return members


@pytest.mark.parametrize("seen_by", ["notification", "sweep"])
async def test_a_group_licensed_again_recomputes_its_members(world: World, seen_by: str) -> None:
    """Licenses removed by mistake, then given back: Entra assigns them again, so every
    member's findings move. The group kept its place in its partition (and its member set),
    so no full round reads its members: they are sent on because the licenses came back."""
    members = await licenses_taken_and_given_back(world, EMS_E3)

    outcome = await handle_group_changes(
        world.svc, changed(EMS_E3) if seen_by == "notification" else sweep()
    )

    assert EMS_E3 in outcome.license_changed
    assert members
    assert recomputed_users(world) == members
    assert EMS_E3 in LicensedGroups(world.svc.tables.deltalinks).configs()


@pytest.mark.parametrize("seen_by", ["notification", "sweep"])
async def test_a_group_licensed_again_is_recomputed_by_the_replay_of_a_round_that_crashed(
    world: World, seen_by: str
) -> None:
    members = await licenses_taken_and_given_back(world, EMS_E3)
    msg = changed(EMS_E3) if seen_by == "notification" else sweep()
    world.svc.crash_points = CrashRecorder([], crash_at="groups.after_classify")
    with pytest.raises(SimulatedCrash):
        await handle_group_changes(world.svc, msg)

    await handle_group_changes(world.svc, msg)  # the host redelivers it

    assert recomputed_users(world) == members


async def test_a_license_change_on_more_groups_than_one_message_can_name_is_still_sent() -> None:
    """A tenant-wide change (a plan disabled in every E3 group) seen by one sweep: the recompute
    messages stay under the queue's 64 KiB however many groups moved (was: MessageError at
    every send, so the sweep failed, was poisoned, and every later sweep failed the same)."""
    snapshot, extra = many_licensed_groups(1300)
    world = await settled(build_world(snapshot))
    teams_off = [
        {"skuId": ENTERPRISEPACK, "disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"]}
    ]
    for group_id in extra:
        world.directory.set_group_licenses(group_id, teams_off)

    outcome = await handle_group_changes(world.svc, sweep())

    assert len(outcome.license_changed) == len(extra)
    assert recomputed_users(world) == {ALEX}


@pytest.mark.parametrize("seen_by", ["notification", "sweep"])
async def test_a_nested_group_finding_follows_its_groups_licenses(
    world: World, seen_by: str
) -> None:
    """E3 Base (with Sales_Team nested) loses its licenses: nobody is left out of a license
    it no longer gives, so its NestedGroupMember resolves; licensed again, the finding is back.
    Neither round says anything of the nesting (was: the finding stayed open on an unlicensed
    group, then stayed missing, until the nightly)."""
    await settled(world)
    assert open_nested(world)
    licenses = world.directory.groups[E3_BASE]["assignedLicenses"]

    def seen() -> GroupsChanged | DeltaSweep:
        return changed(E3_BASE) if seen_by == "notification" else sweep()

    world.directory.set_group_licenses(E3_BASE, [])
    await handle_group_changes(world.svc, seen())
    assert open_nested(world) == {}

    world.directory.set_group_licenses(E3_BASE, licenses)
    await handle_group_changes(world.svc, seen())
    assert [k.rsplit("|", 1)[1] for k in open_nested(world)] == [SALES_TEAM]


class PartitionWritesFail(EntityStore):
    """The `deltalinks` table with its partition rows unwritable for a while (the table
    service answering 503): group configurations still write."""

    def __init__(self, inner: EntityStore) -> None:
        self._inner = inner
        self.failing = True

    @property
    def name(self) -> str:
        return self._inner.name

    def _check(self, pk: str) -> None:
        if self.failing and pk == PARTITION_PK:
            raise OSError("table service unavailable")

    def get(self, pk: str, rk: str) -> Entity | None:
        return self._inner.get(pk, rk)

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._check(pk)
        return self._inner.insert(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._check(pk)
        return self._inner.upsert(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        self._check(pk)
        return self._inner.update(pk, rk, fields, etag=etag)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._check(pk)
        self._inner.delete(pk, rk, etag=etag)

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        self._check(pk)
        self._inner.write_batch(pk, upserts, deletes)

    def query(self, pk: str) -> list[Entity]:
        return self._inner.query(pk)

    def query_all(self) -> Iterator[Entity]:
        return self._inner.query_all()


async def test_a_newly_licensed_group_whose_placement_failed_is_placed_by_the_retry(
    world: World,
) -> None:
    """Sales_Team gains licenses; placing it in a partition fails (storage unavailable), so
    the host delivers the notification again. The retry still places it and sends its
    members on (was: its configuration was stored first, so the retry took it for a known
    group with no partition to run: its members were never recomputed, and later changes to
    it ran no delta, until a re-check or sweep placed it)."""
    await settled(world)
    flaky = PartitionWritesFail(world.svc.tables.deltalinks)
    world.svc.tables = replace(world.svc.tables, deltalinks=flaky)
    world.directory.set_group_licenses(SALES_TEAM, [{"skuId": ENTERPRISEPACK, "disabledPlans": []}])
    with pytest.raises(OSError, match="table service unavailable"):
        await handle_group_changes(world.svc, changed(SALES_TEAM))

    flaky.failing = False
    await handle_group_changes(world.svc, changed(SALES_TEAM))  # the host redelivers it

    [partition] = LicensedGroups(world.svc.tables.deltalinks).partitions()
    assert SALES_TEAM in partition.group_ids
    assert recomputed_users(world) == {LYNNE}
    assert SALES_TEAM in LicensedGroups(world.svc.tables.deltalinks).configs()


async def test_a_nested_group_finding_follows_licenses_lost_in_a_round_that_crashed(
    world: World,
) -> None:
    """The worker dies once the round's writes are saved (the group stored as unlicensed): the
    replay no longer sees the licenses go, yet the finding must still resolve."""
    await settled(world)
    world.directory.set_group_licenses(E3_BASE, [])
    world.svc.crash_points = CrashRecorder([], crash_at="groups.after_members_saved")
    with pytest.raises(SimulatedCrash):
        await handle_group_changes(world.svc, changed(E3_BASE))

    await handle_group_changes(world.svc, changed(E3_BASE))  # the host redelivers it

    assert open_nested(world) == {}


async def test_a_group_licensed_again_is_found_by_a_round_another_group_started(
    world: World,
) -> None:
    """EMS lost its licenses (handled); they come back, and that notification is not acted on
    (EMS was looked up as unlicensed minutes ago, so it is skipped). A member added to
    E3 Teams, in the same partition, runs the round that carries EMS's licenses: its members
    are sent on and it is stored as licensed (was: the round saw the licenses on a group it
    did not hold as licensed, moved the delta link past them and sent nobody)."""
    members = await licenses_taken_and_given_back(world, EMS_E3)
    world.directory.add_member(E3_TEAMS, ADELE)

    outcome = await handle_group_changes(world.svc, changed(E3_TEAMS))

    assert EMS_E3 in outcome.license_changed
    assert recomputed_users(world) == members | {ADELE}
    assert EMS_E3 in LicensedGroups(world.svc.tables.deltalinks).configs()
