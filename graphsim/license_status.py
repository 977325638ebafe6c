"""Reading and bookkeeping a tenant's licensing outcome: errors on assignment entries, members
in error, group processing state, seat counts, and removals a dependency blocks (§3, §4.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .license_rules import ERROR, HOLDING_STATES, NO_ERROR, LicensingRules
from .memberships import member_user_ids

Json = dict[str, Any]


def license_processing_state(group: Mapping[str, Any]) -> str | None:
    """licenseProcessingState whether stored as a string or as ``{"state": ...}`` (§3.3)."""
    value = group.get("licenseProcessingState")
    if isinstance(value, Mapping):
        state = value.get("state")
        return None if state is None else str(state)
    return None if value is None else str(value)


def set_license_processing_state(group: Json, state: str) -> None:
    """Write licenseProcessingState back in the form found (string when absent)."""
    if isinstance(group.get("licenseProcessingState"), Mapping):
        group["licenseProcessingState"] = {**group["licenseProcessingState"], "state": state}
    else:
        group["licenseProcessingState"] = state


def has_error(entry: Mapping[str, Any]) -> bool:
    """An assignment entry is in error when its state is Error or it names an error (§3.2)."""
    return entry.get("state") == ERROR or entry.get("error") not in NO_ERROR


def members_with_license_errors(
    group_id: str, users: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Direct user members whose assignment from this group is in error (§3.3).

    Users who left the group but keep a DependencyViolation entry are no longer members, so
    they are not listed (the relationship is on the group's members).
    """
    group = groups.get(group_id)
    if group is None:
        return []
    return [uid for uid in member_user_ids(group) if has_error_from(users.get(uid), group_id)]


def group_has_members_with_errors(
    group_id: str, users: Mapping[str, Mapping[str, Any]], index: Mapping[str, Iterable[str]]
) -> bool:
    """Backs ``$filter=hasMembersWithLicenseErrors eq true`` using the membership index."""
    return any(
        group_id in gids and has_error_from(users.get(uid), group_id) for uid, gids in index.items()
    )


def has_error_from(user: Mapping[str, Any] | None, group_id: str) -> bool:
    if user is None:
        return False
    return any(
        e.get("assignedByGroup") == group_id and has_error(e)
        for e in user.get("licenseAssignmentStates") or []
    )


def recount_consumed_units(
    users: Mapping[str, Mapping[str, Any]], skus: Mapping[str, Json]
) -> None:
    """Set every SKU's consumedUnits to the number of users holding it (one seat per user)."""
    counts = dict.fromkeys(skus, 0)
    for user in users.values():
        for lic in user.get("assignedLicenses") or []:
            if lic.get("skuId") in counts:
                counts[lic["skuId"]] += 1
    for sku_id, count in counts.items():
        skus[sku_id]["consumedUnits"] = count


def direct_removal_blockers(
    user: Mapping[str, Any],
    sku_id: str,
    skus: Mapping[str, Mapping[str, Any]],
    rules: LicensingRules,
) -> list[str]:
    """Plans that would lose their last prerequisite if the user's direct ``sku_id`` went.

    For the HTTP layer's ``assignLicense`` ``removeLicenses``: Graph refuses such a removal
    ("License assignment failed because service plan <id> depends on ...", data/README);
    group paths are handled by :func:`process_users` as DependencyViolation instead.
    """

    def enabled(entry: Mapping[str, Any]) -> set[str]:
        sku = skus.get(entry.get("skuId", "")) or {}
        off = set(entry.get("disabledPlans") or [])
        return {p["servicePlanId"] for p in sku.get("servicePlans") or []} - off

    holding = [
        e for e in user.get("licenseAssignmentStates") or [] if e.get("state") in HOLDING_STATES
    ]
    removed = [e for e in holding if e.get("assignedByGroup") is None and e.get("skuId") == sku_id]
    if not removed or not rules.plan_dependencies:
        return []
    rest: set[str] = set().union(*[enabled(e) for e in holding if e not in removed])
    gone = set().union(*[enabled(e) for e in removed]) - rest
    return sorted(
        plan
        for plan in rest & rules.plan_dependencies.keys()
        if rules.plan_dependencies[plan] & gone and not rules.plan_dependencies[plan] & rest
    )
