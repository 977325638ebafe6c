"""`read_users` joins the users' memberships onto the cached licensed groups: each group gets
exactly the read users that are its direct members, in the order the users were read, even
when every user is in dozens of licensed groups."""

from __future__ import annotations

import pytest

from shared.ports.directory import GroupConfig
from shared.service.stores import LicensedGroups
from shared.service.user_reads import read_users
from tests.service.world import build_world, demo_snapshot, many_groups_per_user

pytestmark = pytest.mark.anyio


async def test_each_licensed_group_gets_exactly_its_read_members() -> None:
    snapshot, user_ids, expected = many_groups_per_user(groups=60, users=12, per_user=40)
    world = build_world(snapshot)
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in snapshot["groups"]:
        licensed.save_config(GroupConfig.from_graph(group))
    asked = user_ids[::2] + user_ids[1::2]  # not in the order the groups list them

    tenant = await read_users(world.svc, asked)

    assert list(tenant.users) == asked
    members = {g.id: list(g.member_user_ids) for g in tenant.groups.values()}
    for group_id, member_ids in expected.items():
        assert members[group_id] == [u for u in asked if u in member_ids]
    demo_groups = {g["id"] for g in demo_snapshot()["groups"] if g.get("assignedLicenses")}
    assert demo_groups <= members.keys()
    assert all(members[g] == [] for g in demo_groups)
