"""Findings about a licensed group itself: today, nested groups that grant nothing.

Group-based licensing licenses direct user members only, so users reached through a nested
group get nothing from it. One finding per licensed group and nested group that leaves users
out (its key ends with the nested group's id), so each pair is recorded, alerted and resolved
on its own. A user is not left out when a direct member of the licensed group, or of a group
on the way that is itself licensed with the same products (no fewer plans); a nested group
that leaves nobody out (empty, or licensed itself) has no finding. Pure: no I/O, no clock.
"""

from __future__ import annotations

from shared.core.findings import INFO, NESTED_GROUP_MEMBER, Finding, Names, membership_fix
from shared.core.model import Group, LicenseAssignment, Tenant


def group_findings(group: Group, tenant: Tenant, names: Names) -> list[Finding]:
    """One NestedGroupMember per group member of a licensed group that leaves users out: the
    users reached through it (at any depth) who get the group's products neither as its
    direct members nor from a group on the way licensed with the same products."""
    if not group.licenses or not group.member_group_ids:
        return []
    direct = set(group.member_user_ids)
    found = []
    for nested_id in sorted(dict.fromkeys(group.member_group_ids)):
        reached, covered = _users_in(nested_id, tenant, group.licenses, seen={group.id})
        left_out = sorted(reached - covered - direct)
        if not left_out:
            continue
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


def _users_in(
    group_id: str, tenant: Tenant, licenses: tuple[LicenseAssignment, ...], *, seen: set[str]
) -> tuple[set[str], set[str]]:
    """Users of `group_id` and of the groups nested in it, each group followed once, and those
    among them who are direct members of a group that assigns `licenses` itself."""
    stack = [group_id]
    users: set[str] = set()
    covered: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        nested = tenant.groups.get(current)
        if nested is not None:
            users.update(nested.member_user_ids)
            if _assigns(nested.licenses, licenses):
                covered.update(nested.member_user_ids)
            stack.extend(nested.member_group_ids)
    return users, covered


def _assigns(held: tuple[LicenseAssignment, ...], wanted: tuple[LicenseAssignment, ...]) -> bool:
    """Whether `held` gives every product of `wanted`, with no plan off that `wanted` has on."""
    disabled = {lic.sku_id: lic.disabled_plans for lic in held}
    return all(
        lic.sku_id in disabled and disabled[lic.sku_id] <= lic.disabled_plans for lic in wanted
    )
