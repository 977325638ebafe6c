"""Findings from the errors Graph reports on each licenseAssignmentState.

Graph says *that* an assignment failed (CountViolation, MutuallyExclusiveViolation, ...); these
findings say what it means for the user in plain language, the cause, and a remedy that says
*where* to act. The evidence they carry is what the reprocess policy watches for a change.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core import findings
from shared.core.model import AssignmentState, Group, Sku, Tenant, User, normalize_error
from shared.core.plan_conflicts import PlanConflict, lifted_only


def reported_finding(
    user: User,
    state: AssignmentState,
    code: str,
    tenant: Tenant,
    names: findings.Names,
    conflicts: Sequence[PlanConflict] = (),
) -> findings.Finding:
    """The finding for an error Graph reports on one of the user's assignments (`conflicts`:
    the table of conflicting plans, which tells a conflict Microsoft has lifted)."""
    product = names.product(state.sku_id)
    group = tenant.groups.get(state.assigned_by_group or "")
    via = "a direct assignment" if state.is_direct else names.group(state.assigned_by_group)
    severity = findings.ERROR if state.state == "Error" else findings.WARNING
    effect = (
        f"{user.display_name} does not have {product} from {via}"
        if severity == findings.ERROR
        else f"{user.display_name}'s {product} from {via} works, but a later change failed"
    )
    all_or_none = ""
    if severity == findings.ERROR and group is not None and len(group.licenses) > 1:
        all_or_none = (
            f" Because one product of {names.group(group.id)} failed, none of that group's "
            f"{len(group.licenses)} products are assigned to this user (all-or-none)."
        )
    cause, remedy, evidence = _cause_and_remedy(user, state, code, group, tenant, names, conflicts)
    return findings.state_finding(
        code,
        severity,
        user,
        state,
        message=f"{effect}: {cause}.{all_or_none}",
        remedy=remedy,
        evidence=evidence,
    )


def _cause_and_remedy(
    user: User,
    state: AssignmentState,
    code: str,
    group: Group | None,
    tenant: Tenant,
    names: findings.Names,
    conflicts: Sequence[PlanConflict],
) -> tuple[str, str, tuple[str, ...]]:
    product = names.product(state.sku_id)
    leave = (
        "remove the user from the group: " + findings.membership_fix(group, names, group.id)
        if group
        else "remove the direct assignment"
    )
    # reprocessLicenseAssignment re-runs group-based assignments only
    direct = state.is_direct
    retry = "assign the license again" if direct else "reprocess the user"
    if code == findings.COUNT_VIOLATION:
        short = _seatless_siblings(user, state, tenant)
        seats = " and ".join(names.product(s) for s in short) if short else product
        return (
            f"no free seats of {seats} were left"
            + (
                f" ({product} itself has free seats, but Entra assigns a group's products all "
                "or none)"
                if short
                else ""
            ),
            f"Buy or free seats of {seats} ({findings.ADMIN_CENTER_LICENSES}), then {retry}"
            + (
                ": Entra does not retry by itself when seats become free (License Guard "
                "reprocesses automatically in act mode)."
                if not direct
                else "."
            ),
            tuple(f"{findings.SEATS_OF}{s}" for s in short),
        )
    if code == findings.MUTUALLY_EXCLUSIVE:
        others = _other_paths(user, state)
        lifted = _lifted_conflicts(user, state, tenant, conflicts)
        if lifted:
            return (
                f"a service plan of {product} conflicts with a plan the user holds from another "
                f"license, but Microsoft now allows {_pairs(lifted)} together",
                f"{retry.capitalize()}: Microsoft says to reprocess a conflict between these plans "
                f"that lingers ({lifted[0].source})"
                + ("" if direct else "; License Guard does so once by itself in act mode")
                + ". If the error comes back, decide which license wins: disable the "
                f"conflicting plan in one of the assignments ({findings.ADMIN_CENTER_LICENSES}) or "
                f"{leave}.",
                (*others, *(f"{findings.LIFTED_CONFLICT}{r.name_a}+{r.name_b}" for r in lifted)),
            )
        return (
            f"a service plan of {product} conflicts with a plan the user already holds from "
            "another license",
            "Decide which license wins: disable the conflicting plan in one of the assignments "
            f"({findings.ADMIN_CENTER_LICENSES}) or {leave}. During a planned swap between groups "
            "this clears once the user leaves the old group; Entra never resolves it on its own.",
            others,
        )
    if code == findings.DEPENDENCY_VIOLATION:
        return (
            "another plan the user holds depends on this license, so Entra kept it instead of "
            "removing it",
            f"Give the user the required plan through another path, or disable the dependent "
            f"plans first ({findings.ADMIN_CENTER_LICENSES}), then "
            + ("remove the direct assignment again." if direct else "reprocess the user."),
            (),
        )
    if code == findings.PROHIBITED_IN_USAGE_LOCATION:
        where = f"usage location {user.usage_location}"
        fix = "Correct the usage location if it is wrong"
        if not user.usage_location:  # Entra licensed the user for the tenant's country
            where = (
                f"the tenant's country ({findings.tenant_country(tenant) or 'unset'}), which "
                "Entra uses for a user without a usage location"
            )
            fix = "Set the user's usage location to where they work"
        return (
            f"{product} may not be used in {where}",
            f"{fix} ("
            + findings.user_attribute_fix(user, "usageLocation")
            + f"), then {retry}; otherwise {leave}.",
            (f"usageLocation={user.usage_location or ''}",),
        )
    if code == findings.UNIQUENESS_VIOLATION:
        return (
            "a proxy address of this user is already used by another object",
            "Remove the duplicate proxy address ("
            + findings.user_attribute_fix(user, "proxyAddresses")
            + f"; Exchange admin center for cloud objects), then {retry}.",
            (),
        )
    return (
        f"Entra reported an unclassified error ({state.error})",
        "Look up 'Change user license' for this user in the Entra audit log (Core Directory) "
        f"to see the reason, fix it, then {retry} ({findings.ADMIN_CENTER_LICENSES}).",
        (),
    )


def _seatless_siblings(user: User, state: AssignmentState, tenant: Tenant) -> tuple[str, ...]:
    """The group's other products this user failed to get for want of a seat, when the state's
    own product has a free seat: Entra fails every product of the group (all-or-none), so these
    are what the user waits for. () for a direct path or a product short of seats itself."""
    if state.is_direct or not _has_free_seat(tenant.skus.get(state.sku_id)):
        return ()
    return tuple(
        dict.fromkeys(
            s.sku_id
            for s in user.states
            if s.assigned_by_group == state.assigned_by_group
            and s.sku_id != state.sku_id
            and normalize_error(s.error) == findings.COUNT_VIOLATION
            and not _has_free_seat(tenant.skus.get(s.sku_id))
        )
    )


def _has_free_seat(sku: Sku | None) -> bool:
    """A SKU gone from subscribedSkus has no seats."""
    return sku is not None and sku.prepaid.enabled > sku.consumed


def _other_paths(user: User, state: AssignmentState) -> tuple[str, ...]:
    """The user's other working paths with the plans each disables: disabling the conflicting
    plan in one of them is a fix the reprocess policy must see as a change."""
    return tuple(
        sorted(
            f"{s.sku_id}:{s.assigned_by_group or 'direct'}"
            + (f":-{','.join(sorted(s.disabled_plans))}" if s.disabled_plans else "")
            for s in user.states
            if s is not state and normalize_error(s.error) is None
        )
    )


def _pairs(rows: Sequence[PlanConflict]) -> str:
    return " and ".join(f"{r.name_a} with {r.name_b}" for r in rows)


def _lifted_conflicts(
    user: User, state: AssignmentState, tenant: Tenant, conflicts: Sequence[PlanConflict]
) -> tuple[PlanConflict, ...]:
    """The lifted rows of the conflicts table that alone explain this MutuallyExclusiveViolation:
    a plan the failing path enables against one the user holds through another product."""
    sku = tenant.skus.get(state.sku_id)
    if not conflicts or sku is None:
        return ()
    held: set[str] = set()
    for other in user.states:
        other_sku = tenant.skus.get(other.sku_id)
        if other_sku is None or other.sku_id == state.sku_id:
            continue  # one product's paths do not conflict with each other
        if normalize_error(other.error) is None:
            held |= other_sku.plan_ids - other.disabled_plans
    return lifted_only(conflicts, sku.plan_ids - state.disabled_plans, held)
