"""Findings about a licensed group itself: today, nested groups that grant nothing.

Group-based licensing licenses direct user members only, so users reached through a nested
group get nothing from it. One finding per licensed group and nested group (its key ends with
the nested group's id), so each pair is recorded, alerted and resolved on its own. Pure: no I/O,
no clock.
"""

from __future__ import annotations

from shared.core.findings import INFO, NESTED_GROUP_MEMBER, Finding, Names, membership_fix
from shared.core.model import Group, Tenant


def group_findings(group: Group, tenant: Tenant, names: Names) -> list[Finding]:
    """One NestedGroupMember per group member of a licensed group, with the users (reached
    through it, at any depth) who are not direct members and so get nothing through it."""
    if not group.licenses or not group.member_group_ids:
        return []
    direct = set(group.member_user_ids)
    found = []
    for nested_id in sorted(dict.fromkeys(group.member_group_ids)):
        left_out = sorted(_users_in(nested_id, tenant, seen={group.id}) - direct)
        found.append(
            Finding(
                code=NESTED_GROUP_MEMBER,
                severity=INFO,
                subject=f"group:{group.id}",
                sku_id=None,
                group_id=group.id,
                part=nested_id,
                message=(
                    f"Licensed group {names.group(group.id)} has group member "
                    f"{names.group(nested_id)}. Group-based licensing only licenses direct user "
                    f"members, so {len(left_out)} user(s) in {names.group(nested_id)} get "
                    "nothing through it."
                ),
                remedy=(
                    f"Add those users directly (or license {names.group(nested_id)} itself): "
                    + membership_fix(group, names, group.id)
                    + "."
                ),
                user_ids=tuple(left_out),
            )
        )
    return found


def _users_in(group_id: str, tenant: Tenant, *, seen: set[str]) -> set[str]:
    """Users of `group_id` and of the groups nested in it, each group followed once."""
    stack = [group_id]
    users: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        nested = tenant.groups.get(current)
        if nested is not None:
            users.update(nested.member_user_ids)
            stack.extend(nested.member_group_ids)
    return users
