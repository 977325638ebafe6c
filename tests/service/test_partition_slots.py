"""Delta partition slots: a group deleted, or left unlicensed, gives its slot back at a sweep;
a group that comes back is placed again and all its members are recomputed; a crash between
the release's steps loses no group's place and leaves none in two."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.directory import DELTA_FILTER_LIMIT
from shared.ports.messages import DeltaSweep, GroupsChanged, format_timestamp
from shared.ports.tables import EntityStore, Upserts
from shared.service.groups import handle_group_changes
from shared.service.stores import GroupMembers, LicensedGroups
from tests.demo_tenant import E3_BASE, E3_TEAMS, EMS, EMS_E3, ENTERPRISEPACK, SALES_TEAM
from tests.service.test_group_changes import many_licensed_groups
from tests.service.world import START, World, build_world, recomputed_users

pytestmark = pytest.mark.anyio

EMS_LICENSES = [{"skuId": EMS, "disabledPlans": []}]


def changed(*group_ids: str) -> GroupsChanged:
    return GroupsChanged(
        group_ids=group_ids, correlation_id="c", received_at=format_timestamp(START)
    )


def sweep() -> DeltaSweep:
    return DeltaSweep(reason="test sweep", correlation_id="s")


def places(world: World) -> Counter[str]:
    """How many partitions hold each group."""
    partitions = LicensedGroups(world.svc.tables.deltalinks).partitions()
    return Counter(g for p in partitions for g in p.group_ids)


async def settled(world: World) -> World:
    await handle_group_changes(world.svc, sweep())
    recomputed_users(world)
    return world


async def test_a_deleted_group_gives_its_slot_to_the_next_group() -> None:
    """A full partition of 50; one group deleted: the next sweep frees its slot, and a group
    licensed after fills it instead of starting a second partition."""
    snapshot, extra = many_licensed_groups(DELTA_FILTER_LIMIT - 3)
    world = await settled(build_world(snapshot))
    assert [len(p.group_ids) for p in LicensedGroups(world.svc.tables.deltalinks).partitions()] == [
        DELTA_FILTER_LIMIT
    ]
    world.directory.delete_group(extra[0])
    await handle_group_changes(world.svc, changed(extra[0]))
    await handle_group_changes(world.svc, sweep())
    assert extra[0] not in places(world)
    recomputed_users(world)

    world.directory.set_group_licenses(SALES_TEAM, [{"skuId": ENTERPRISEPACK, "disabledPlans": []}])
    await handle_group_changes(world.svc, changed(SALES_TEAM))

    [partition] = LicensedGroups(world.svc.tables.deltalinks).partitions()
    assert SALES_TEAM in partition.group_ids
    assert len(partition.group_ids) == DELTA_FILTER_LIMIT
    assert recomputed_users(world) == set(world.directory.group_member_ids_now(SALES_TEAM))


async def test_a_group_that_stays_unlicensed_is_released_at_the_next_sweep(world: World) -> None:
    await settled(world)
    ems_members = set(world.directory.group_member_ids_now(EMS_E3))
    world.directory.set_group_licenses(EMS_E3, [])

    await handle_group_changes(world.svc, sweep())  # the loss: members recomputed, kept placed
    assert recomputed_users(world) >= ems_members
    assert places(world)[EMS_E3] == 1

    await handle_group_changes(world.svc, sweep())  # still unlicensed: released

    assert EMS_E3 not in places(world)
    assert places(world).keys() == {E3_BASE, E3_TEAMS}
    assert GroupMembers(world.svc.tables.groupmembers).members(EMS_E3) == set()
    assert world.svc.tables.deltalinks.get("group", EMS_E3) is None


@pytest.mark.parametrize("how", ["notification", "sweep"])
async def test_a_released_group_licensed_again_is_placed_and_all_its_members_recomputed(
    world: World, how: str
) -> None:
    await settled(world)
    ems_members = set(world.directory.group_member_ids_now(EMS_E3))
    world.directory.set_group_licenses(EMS_E3, [])
    await handle_group_changes(world.svc, sweep())
    await handle_group_changes(world.svc, sweep())
    recomputed_users(world)
    assert EMS_E3 not in places(world)

    world.directory.set_group_licenses(EMS_E3, EMS_LICENSES)
    await handle_group_changes(world.svc, changed(EMS_E3) if how == "notification" else sweep())

    assert places(world)[EMS_E3] == 1
    assert recomputed_users(world) >= ems_members
    assert EMS_E3 in LicensedGroups(world.svc.tables.deltalinks).configs()


class MemberClearsFail(InMemoryTable):
    """The `groupmembers` table where clearing one group's members fails once (the worker
    dies there: after its partition was written, before its members and row are forgotten)."""

    def __init__(self, inner: EntityStore, group_id: str) -> None:
        super().__init__(inner.name)
        for row in inner.query_all():
            self.upsert(row.partition_key, row.row_key, row.fields)
        self.group_id = group_id
        self.failing = True

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        if self.failing and pk == self.group_id and not upserts:
            self.failing = False
            raise OSError("worker died")
        super().write_batch(pk, upserts, deletes)


async def crashed_in_release(world: World) -> MemberClearsFail:
    """EMS E3 unlicensed two sweeps running; the second dies between taking it out of its
    partition and forgetting its members and row."""
    await settled(world)
    world.directory.set_group_licenses(EMS_E3, [])
    await handle_group_changes(world.svc, sweep())
    table = MemberClearsFail(world.svc.tables.groupmembers, EMS_E3)
    world.svc.tables = replace(world.svc.tables, groupmembers=table)
    with pytest.raises(OSError, match="worker died"):
        await handle_group_changes(world.svc, sweep())
    recomputed_users(world)
    assert EMS_E3 not in places(world)
    assert GroupMembers(table).members(EMS_E3)  # kept, stale
    return table


async def test_a_crash_in_a_release_then_a_license_places_the_group_once_with_all_members(
    world: World,
) -> None:
    await crashed_in_release(world)
    ems_members = set(world.directory.group_member_ids_now(EMS_E3))

    world.directory.set_group_licenses(EMS_E3, EMS_LICENSES)
    await handle_group_changes(world.svc, changed(EMS_E3))

    assert places(world) == Counter({E3_BASE: 1, E3_TEAMS: 1, EMS_E3: 1})
    assert recomputed_users(world) >= ems_members


async def test_the_sweep_after_a_crash_in_a_release_forgets_what_it_left(world: World) -> None:
    table = await crashed_in_release(world)

    await handle_group_changes(world.svc, sweep())

    assert places(world) == Counter({E3_BASE: 1, E3_TEAMS: 1})
    assert GroupMembers(table).members(EMS_E3) == set()
    assert world.svc.tables.deltalinks.get("group", EMS_E3) is None
