"""Findings about a licensed group itself: today, nested groups that grant nothing.

Group-based licensing licenses direct user members only, so users reached through a nested
group get nothing from it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from shared.core.findings import INFO, NESTED_GROUP_MEMBER, Finding, Names, membership_fix
from shared.core.model import Group, Tenant


def group_findings(group: Group, tenant: Tenant, names: Names) -> list[Finding]:
    """Findings about a licensed group itself: today, nested groups that grant nothing."""
    if not group.licenses or not group.member_group_ids:
        return []
    direct = set(group.member_user_ids)
    nested_users = sorted(_users_in_nested_groups(group, tenant) - direct)
    nested_names = ", ".join(names.group(g) for g in group.member_group_ids)
    return [
        Finding(
            code=NESTED_GROUP_MEMBER,
            severity=INFO,
            subject=f"group:{group.id}",
            sku_id=None,
            group_id=group.id,
            message=(
                f"Licensed group {names.group(group.id)} has group members ({nested_names}). "
                "Group-based licensing only licenses direct user members, so "
                f"{len(nested_users)} user(s) in those groups get nothing through it."
            ),
            remedy=(
                "Add those users directly (or license the nested groups themselves): "
                + membership_fix(group, names, group.id)
                + "."
            ),
            user_ids=tuple(nested_users),
        )
    ]


def _users_in_nested_groups(group: Group, tenant: Tenant) -> set[str]:
    seen: set[str] = {group.id}
    stack = list(group.member_group_ids)
    users: set[str] = set()
    while stack:
        group_id = stack.pop()
        if group_id in seen:
            continue
        seen.add(group_id)
        nested = tenant.groups.get(group_id)
        if nested is not None:
            users.update(nested.member_user_ids)
            stack.extend(nested.member_group_ids)
    return users
