"""`read_users` joins the users' memberships onto the cached licensed groups: each group gets
exactly the read users that are its direct members, in the order the users were read, even
when every user is in dozens of licensed groups."""

from __future__ import annotations

import random
from typing import Any

import pytest

from shared.ports.directory import GroupConfig
from shared.service.stores import LicensedGroups
from shared.service.user_reads import read_users
from tests.builders import guid
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio

GROUPS = 60
USERS = 12
GROUPS_PER_USER = 40


def many_groups_per_user() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The demo tenant plus GROUPS licensed groups and USERS users, each user a direct member
    of GROUPS_PER_USER of them; and the expected user members per new group."""
    snapshot = demo_snapshot()
    sku = snapshot["subscribedSkus"][0]["skuId"]
    rng = random.Random(7)
    group_ids = [guid("group", f"many-{i}") for i in range(GROUPS)]
    user_ids = [guid("user", f"many-{i}") for i in range(USERS)]
    expected: dict[str, list[str]] = {g: [] for g in group_ids}
    for user_id in user_ids:
        for group_id in rng.sample(group_ids, GROUPS_PER_USER):
            expected[group_id].append(user_id)
    snapshot["users"] += [
        {
            "id": user_id,
            "userPrincipalName": f"many{i}@contoso.com",
            "displayName": f"Many {i}",
            "accountEnabled": True,
            "usageLocation": "US",
            "userType": "Member",
            "assignedLicenses": [],
            "licenseAssignmentStates": [],
        }
        for i, user_id in enumerate(user_ids)
    ]
    snapshot["groups"] += [
        {
            "id": group_id,
            "displayName": f"Licensing_Many_{i}",
            "securityEnabled": True,
            "groupTypes": [],
            "assignedLicenses": [{"skuId": sku, "disabledPlans": []}],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [
                {"@odata.type": "#microsoft.graph.user", "id": user_id}
                for user_id in expected[group_id]
            ],
        }
        for i, group_id in enumerate(group_ids)
    ]
    return snapshot, expected


async def test_each_licensed_group_gets_exactly_its_read_members() -> None:
    snapshot, expected = many_groups_per_user()
    world = build_world(snapshot)
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in snapshot["groups"]:
        licensed.save_config(GroupConfig.from_graph(group))
    read = [u["id"] for u in snapshot["users"][-USERS:]]
    asked = read[::2] + read[1::2]  # not in the order the groups list them

    tenant = await read_users(world.svc, asked)

    assert list(tenant.users) == asked
    members = {g.id: list(g.member_user_ids) for g in tenant.groups.values()}
    for group_id, member_ids in expected.items():
        assert members[group_id] == [u for u in asked if u in member_ids]
    demo_groups = {g["id"] for g in demo_snapshot()["groups"] if g.get("assignedLicenses")}
    assert demo_groups <= members.keys()
    assert all(members[g] == [] for g in demo_groups)
