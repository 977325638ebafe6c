"""`read_users` joins the users' memberships onto the cached licensed groups: each group gets
exactly the read users that are its direct members, in the order the users were read, even
when every user is in dozens of licensed groups."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.snapshot import GraphTranslator
from shared.ports.directory import GroupConfig
from shared.ports.tables import Entity, EntityStore
from shared.service.stores import LicensedGroups, ServiceState
from shared.service.user_reads import SKU_MAX_AGE, read_users
from shared.service.users import Mode, reconcile_users
from tests.demo_tenant import IRVIN
from tests.service.world import build_world, demo_snapshot, many_groups_per_user

pytestmark = pytest.mark.anyio


async def test_each_licensed_group_gets_exactly_its_read_members() -> None:
    snapshot, user_ids, expected = many_groups_per_user(groups=60, users=12, per_user=40)
    world = build_world(snapshot)
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in snapshot["groups"]:
        licensed.save_config(GroupConfig.from_graph(group))
    asked = user_ids[::2] + user_ids[1::2]  # not in the order the groups list them

    tenant = (await read_users(world.svc, asked)).tenant

    assert list(tenant.users) == asked
    members = {g.id: list(g.member_user_ids) for g in tenant.groups.values()}
    for group_id, member_ids in expected.items():
        assert members[group_id] == [u for u in asked if u in member_ids]
    demo_groups = {g["id"] for g in demo_snapshot()["groups"] if g.get("assignedLicenses")}
    assert demo_groups <= members.keys()
    assert all(members[g] == [] for g in demo_groups)


class CountingSkuTimeReads:
    """The `servicestate` table, counting the point reads of the SKU cache's time."""

    def __init__(self, table: EntityStore) -> None:
        self._table, self.reads = table, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def get(self, pk: str, rk: str) -> Entity | None:
        self.reads += (pk, rk) == (ServiceState.META_PK, "skus")
        return self._table.get(pk, rk)


@pytest.mark.parametrize("cache_age", [timedelta(minutes=20), timedelta(hours=2)])
async def test_a_recompute_reads_when_its_sku_counts_were_read_once_with_them(
    cache_age: timedelta,
) -> None:
    """The seats are decided on SKU counts read at `seats_counted_at` at the latest (a
    reprocess done since still holds its seat): the cache's time, read with the SKUs, or the
    refresh's, taken before it asks Graph. It used to be read a second time before the users."""
    world = build_world()
    filled_at = world.clock.now()
    ServiceState(world.svc.tables.servicestate).save_skus(
        GraphTranslator().skus(world.directory.skus).values(), filled_at
    )
    world.clock.advance(cache_age.total_seconds())
    counting = CountingSkuTimeReads(world.svc.tables.servicestate)
    world.svc.tables = replace(world.svc.tables, servicestate=counting)
    mode = Mode(run_id="test")

    await reconcile_users(world.svc, [IRVIN], mode)

    assert counting.reads == 1
    fresh = cache_age < SKU_MAX_AGE
    assert mode.seats_counted_at == (filled_at if fresh else world.clock.now())
    assert mode.read_at == world.clock.now()
