"""Nested groups in licensed groups: read them, and say how many users they leave unlicensed.

Group-based licensing licenses only a group's direct user members; a group nested in a licensed
group gets nothing for its users (graph-facts §4.1). The member read of a licensed group sees
its group members (`nestedGroupIds`); this reads those groups' own members (at any depth) so
`NestedGroupMember` can count the users left out, and turns them into one finding per licensed
group, recorded under the subject `group:<id>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.core.findings import Finding, Names, group_findings
from shared.core.model import Group, Tenant
from shared.directory import JSON


async def read_nested_groups(directory: Any, licensed: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """The groups nested (at any depth) in `licensed` groups (which carry `nestedGroupIds`):
    id, displayName, `memberIds` (users) and their own `nestedGroupIds`."""
    known = {str(g["id"]) for g in licensed}
    todo = [gid for g in licensed for gid in g.get("nestedGroupIds") or () if gid not in known]
    found: list[JSON] = []
    while todo:
        batch = [g for g in dict.fromkeys(todo) if g not in known]
        todo = []
        known.update(batch)
        if not batch:
            break
        for group in (await directory.groups_by_id(batch)).values():
            users: list[str] = []
            nested: list[str] = []
            link: str | None = None
            while True:
                page, link = await directory.group_members_page(group["id"], link, nested=nested)
                users.extend(page)
                if link is None:
                    break
            found.append(
                {
                    "id": group["id"],
                    "displayName": group.get("displayName"),
                    "memberIds": users,
                    "nestedGroupIds": nested,
                }
            )
            todo.extend(nested)
    return found


def nested_group_findings(tenant: Tenant, world: Mapping[str, Any]) -> dict[str, list[Finding]]:
    """For each licensed group in `world` (from `read_world`): its NestedGroupMember finding,
    or none. `tenant` supplies the groups' licenses (its groups need no members)."""
    groups: dict[str, Group] = {}
    for raw in [*(world.get("nestedGroups") or ()), *world["groups"]]:
        known = tenant.groups.get(str(raw["id"]))
        groups[str(raw["id"])] = Group(
            id=str(raw["id"]),
            name=str(raw.get("displayName") or raw["id"]),
            licenses=known.licenses if known else (),
            member_user_ids=tuple(raw.get("memberIds") or ()),
            member_group_ids=tuple(raw.get("nestedGroupIds") or ()),
        )
    whole = Tenant(tenant.skus, groups, {}, tenant.organization)
    names = Names(whole)
    return {
        str(raw["id"]): group_findings(groups[str(raw["id"])], whole, names)
        for raw in world["groups"]
    }
