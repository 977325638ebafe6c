"""Findings from the errors Graph reports on each licenseAssignmentState.

Graph says *that* an assignment failed (CountViolation, MutuallyExclusiveViolation, ...); these
findings say what it means for the user in plain language, the cause, and a remedy that says
*where* to act. The evidence they carry is what the reprocess policy watches for a change.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shared.core import findings
from shared.core.model import (
    AssignmentState,
    Group,
    PrepaidUnits,
    Sku,
    Tenant,
    User,
    normalize_error,
)
from shared.core.plan_conflicts import PlanConflict, conflicting_rows, lifted_only
from shared.core.reported_conflicts import plan_clashes
from shared.core.seat_remedy import seats_fix, sentence
from shared.core.usage_locations import WorkingLocations, effective_location


def reported_finding(
    user: User,
    state: AssignmentState,
    code: str,
    tenant: Tenant,
    names: findings.Names,
    conflicts: Sequence[PlanConflict] = (),
    locations: WorkingLocations | None = None,
) -> findings.Finding:
    """The finding for an error Graph reports on one of the user's assignments (`conflicts`:
    the table of conflicting plans, which tells a conflict Microsoft has lifted, and which
    product of a group conflicts; `locations`: where the tenant shows each product working,
    which tells which product of a group a usage location prohibits)."""
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
    cause, remedy, evidence = _cause_and_remedy(
        user, state, code, group, tenant, names, conflicts, locations
    )
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
    locations: WorkingLocations | None,
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
        holder = _held_through(user, state)
        short = _seatless_siblings(user, state, tenant, holder is not None)
        seats = _products(short, names) or product
        itself = (
            f"{user.display_name} already holds {product} from "
            + ("a direct assignment" if holder.is_direct else names.group(holder.assigned_by_group))
            + ", so this path needs no seat of it"
            if holder is not None
            else f"{product} itself has free seats"
        )
        if holder is not None and not short:  # the group's products all have free seats now
            return (
                f"no free seats were left when Entra tried ({itself}, and the group's other "
                "products have free seats now)",
                "Reprocess the user: Entra does not retry by itself when seats become free "
                "(License Guard reprocesses automatically in act mode).",
                (findings.HELD_ELSEWHERE,),
            )
        return (
            f"no free seats of {seats} were left"
            + (f" ({itself}, but Entra assigns a group's products all or none)" if short else ""),
            sentence(
                seats_fix((_units(tenant, s), names.product(s)) for s in short or (state.sku_id,))
            )
            + f", then {retry}"
            + (
                ": Entra does not retry by itself when seats become free (License Guard "
                "reprocesses automatically in act mode)."
                if not direct
                else "."
            ),
            (
                *(f"{findings.SEATS_OF}{s}" for s in short),
                *((findings.HELD_ELSEWHERE,) if holder is not None else ()),
            ),
        )
    if code == findings.MUTUALLY_EXCLUSIVE:
        others = _other_paths(user, state)
        culprits = conflicting_siblings(user, state, tenant, conflicts)
        rows = (
            tuple(r for c in culprits for r in _conflict_rows(user, c, tenant, conflicts))
            if culprits
            else _conflict_rows(user, state, tenant, conflicts)
        )
        lifted = lifted_only(tuple(dict.fromkeys(rows)))
        conflicting = _products(tuple(c.sku_id for c in culprits), names) or product
        itself = (
            f" ({product} itself conflicts with none of the user's licenses, but Entra assigns "
            "a group's products all or none)"
            if culprits
            else ""
        )
        if lifted:
            return (
                f"a service plan of {conflicting} conflicts with a plan the user holds from "
                f"another license, but Microsoft now allows {_pairs(lifted)} together{itself}",
                f"{retry.capitalize()}: Microsoft says to reprocess a conflict between these plans "
                f"that lingers ({lifted[0].source})"
                + ("" if direct else "; License Guard does so once by itself in act mode")
                + ". If the error comes back, decide which license wins: disable the "
                f"conflicting plan in one of the assignments ({findings.ADMIN_CENTER_LICENSES}) or "
                f"{leave}.",
                (
                    *others,
                    *(f"{findings.LIFTED_CONFLICT}{r.name_a}+{r.name_b}" for r in lifted),
                    *_at_fault(c.sku_id for c in culprits),
                ),
            )
        clashes = plan_clashes(user, culprits or (state,), tenant, conflicts, names)
        return (
            f"a service plan of {conflicting} conflicts with a plan the user already holds from "
            f"another license{itself}"
            + "".join(f": {text}" for text, _ in clashes[:1])
            + "".join(f"; {text}" for text, _ in clashes[1:]),
            "Decide which license wins: disable "
            + (
                "; or ".join(fix for _, fix in clashes)
                or "the conflicting plan in one of the assignments"
            )
            + f" ({findings.ADMIN_CENTER_LICENSES}) or {leave}. During a planned swap between "
            "groups this clears once the user leaves the old group; Entra never resolves it on "
            "its own.",
            (*others, *_at_fault(c.sku_id for c in culprits)),
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
        at_fault = _prohibited_siblings(user, state, tenant, locations)
        prohibited = _products(at_fault, names)
        return (
            f"{prohibited or product} may not be used in {where}"
            + (
                f" ({product} itself works there for other users, but Entra assigns a group's "
                "products all or none)"
                if prohibited
                else ""
            ),
            f"{fix} ("
            + findings.user_attribute_fix(user, "usageLocation")
            + f"), then {retry}; otherwise {leave}.",
            (f"usageLocation={user.usage_location or ''}", *_at_fault(at_fault)),
        )
    if code == findings.UNIQUENESS_VIOLATION:
        return (
            "a proxy address of this user is already used by another object",
            "Find the object that already uses the address (Exchange Online PowerShell: "
            "Get-Recipient -Filter \"EmailAddresses -eq '<address>'\" for each of the user's "
            "addresses) and remove it from one of the two (for this user: "
            + findings.user_attribute_fix(user, "proxyAddresses")
            + f"; Exchange admin center for cloud objects), then {retry}.",
            (),
        )
    return (
        f"Entra reported an unclassified error ({state.error})"
        if normalize_error(state.error)
        else "Graph shows the assignment in state Error without naming the error",
        "Look up 'Change user license' for this user in the Entra audit log (Core Directory) "
        f"to see the reason, fix it, then {retry} ({findings.ADMIN_CENTER_LICENSES}).",
        (),
    )


def _seatless_siblings(
    user: User, state: AssignmentState, tenant: Tenant, held: bool
) -> tuple[str, ...]:
    """The group's other products this user failed to get for want of a seat, when the state's
    own product has a free seat or is `held` through another path (which takes no second
    seat): Entra fails every product of the group (all-or-none), so these are what the user
    waits for (not one they hold elsewhere too). () for a direct path or a product short of
    seats itself."""
    if not held and not _has_free_seat(tenant.skus.get(state.sku_id)):
        return ()
    return tuple(
        dict.fromkeys(
            s.sku_id
            for s in _failed_with(user, state, findings.COUNT_VIOLATION)
            if not _has_free_seat(tenant.skus.get(s.sku_id)) and _held_through(user, s) is None
        )
    )


def _held_through(user: User, state: AssignmentState) -> AssignmentState | None:
    """Another path through which the user holds the state's product (Active, no error): one
    product consumes one seat however many paths give it."""
    return next(
        (
            s
            for s in user.states
            if s.sku_id == state.sku_id
            and s.assigned_by_group != state.assigned_by_group
            and s.state == "Active"
            and normalize_error(s.error) is None
        ),
        None,
    )


def conflicting_siblings(
    user: User, state: AssignmentState, tenant: Tenant, conflicts: Sequence[PlanConflict]
) -> tuple[AssignmentState, ...]:
    """The group's other products failing with this one whose plans the conflicts table pairs
    with a plan the user holds elsewhere, when this product's plans pair with none: Entra
    failed this one with them (all-or-none). () for a product that conflicts itself, or when
    the table explains neither. The what-if learns conflicts by it too
    (`predict_evidence.conflicts_seen`)."""
    if state.sku_id not in tenant.skus or _conflict_rows(user, state, tenant, conflicts):
        return ()
    return tuple(
        s
        for s in _failed_with(user, state, findings.MUTUALLY_EXCLUSIVE)
        if _conflict_rows(user, s, tenant, conflicts)
    )


def _prohibited_siblings(
    user: User, state: AssignmentState, tenant: Tenant, locations: WorkingLocations | None
) -> tuple[str, ...]:
    """The group's other products failing with this one at the user's usage location that no
    user of the tenant holds there, when this product works there for someone: the location
    prohibits those, and Entra failed this one with them (all-or-none)."""
    location = effective_location(user, tenant)
    if locations is None or not location or not locations.works_at(state.sku_id, location):
        return ()
    return tuple(
        dict.fromkeys(
            s.sku_id
            for s in _failed_with(user, state, findings.PROHIBITED_IN_USAGE_LOCATION)
            if not locations.works_at(s.sku_id, location)
        )
    )


def _failed_with(user: User, state: AssignmentState, code: str) -> list[AssignmentState]:
    """The user's states of the group's other products that failed with `code` (none for a
    direct path): all-or-none gives each product of a failing group the group's failure."""
    if state.is_direct:
        return []
    return [
        s
        for s in user.states
        if s.assigned_by_group == state.assigned_by_group
        and s.sku_id != state.sku_id
        and normalize_error(s.error) == code
    ]


def _at_fault(sku_ids: Iterable[str]) -> tuple[str, ...]:
    """Evidence naming the group's products this one failed with (`findings.FAILED_WITH`)."""
    return tuple(f"{findings.FAILED_WITH}{s}" for s in sku_ids)


def _products(sku_ids: Sequence[str], names: findings.Names) -> str:
    """The products' names joined ("" for none)."""
    return " and ".join(names.product(s) for s in sku_ids)


def _units(tenant: Tenant, sku_id: str) -> PrepaidUnits:
    """The SKU's seats by stage (none for a SKU gone from subscribedSkus)."""
    sku = tenant.skus.get(sku_id)
    return sku.prepaid if sku else PrepaidUnits()


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


def _conflict_rows(
    user: User, state: AssignmentState, tenant: Tenant, conflicts: Sequence[PlanConflict]
) -> tuple[PlanConflict, ...]:
    """The rows of the conflicts table that explain a MutuallyExclusiveViolation of this path:
    a plan it enables against one the user holds through another product."""
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
    return conflicting_rows(conflicts, sku.plan_ids - state.disabled_plans, held)
