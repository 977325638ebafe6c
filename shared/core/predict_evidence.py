"""The tenant's own evidence for the what-if's predictions (`shared.core.predict`): the
product pairs its MutuallyExclusiveViolation states show conflicting, and the usage locations
its ProhibitedInUsageLocationViolation states show prohibited.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from shared.core.findings import MUTUALLY_EXCLUSIVE, PROHIBITED_IN_USAGE_LOCATION
from shared.core.model import Tenant, User, normalize_error
from shared.core.plan_conflicts import PlanConflict
from shared.core.reported_findings import conflicting_siblings
from shared.core.usage_locations import effective_location, working_locations


def conflicts_seen(tenant: Tenant, table: Sequence[PlanConflict] = ()) -> dict[str, frozenset[str]]:
    """Product -> products it conflicted with in this tenant's MutuallyExclusiveViolation states.

    An error names only the failing product; the other side is one of the products the user
    holds without error. Only the products common to every such user are kept, so a pair is
    recorded only when the evidence points at it. Not a product another user holds together
    with the failing one, at least the plans of each that failed together here, without error
    (they do not conflict). Not a group's product that failed only with its group's other
    product, which the conflicts `table` shows conflicting (all-or-none:
    `reported_findings.conflicting_siblings`, as the findings attribute it).
    """
    failures: list[tuple[str, frozenset[str], dict[str, frozenset[str]]]] = []
    for user in tenant.users.values():
        held = _held_plans(user, tenant)
        for state in user.states:
            if normalize_error(state.error) != MUTUALLY_EXCLUSIVE or conflicting_siblings(
                user, state, tenant, table
            ):
                continue
            sku = tenant.skus.get(state.sku_id)
            plans = sku.plan_ids - state.disabled_plans if sku else frozenset()
            others = {k: v for k, v in held.items() if k != state.sku_id}
            failures.append((state.sku_id, plans, others))
    together = _held_together(tenant, {sku_id for sku_id, _, _ in failures})
    candidates: dict[str, set[str]] = {}
    for sku_id, plans, others in failures:
        found = {
            other
            for other, other_plans in others.items()
            if not any(
                mine >= plans and theirs >= other_plans
                for mine, theirs in together.get((sku_id, other), ())
            )
        }
        if sku_id in candidates:
            candidates[sku_id] &= found
        else:
            candidates[sku_id] = found
    pairs: dict[str, set[str]] = defaultdict(set)
    for sku_id, conflicting in candidates.items():
        for other in conflicting:
            pairs[sku_id].add(other)
            pairs[other].add(sku_id)
    return {k: frozenset(v) for k, v in pairs.items()}


def _held_plans(user: User, tenant: Tenant) -> dict[str, frozenset[str]]:
    """Product -> the plans the user holds of it through paths without error."""
    held: dict[str, frozenset[str]] = {}
    for state in user.states:
        sku = tenant.skus.get(state.sku_id)
        if sku is not None and normalize_error(state.error) is None:
            enabled = sku.plan_ids - state.disabled_plans
            held[sku.id] = held.get(sku.id, frozenset()) | enabled
    return held


def _held_together(
    tenant: Tenant, failing: set[str]
) -> dict[tuple[str, str], set[tuple[frozenset[str], frozenset[str]]]]:
    """(failing product, other product) -> the plans of each that users hold together without
    error (each distinct combination once: most users share a few)."""
    together: dict[tuple[str, str], set[tuple[frozenset[str], frozenset[str]]]] = defaultdict(set)
    if not failing:
        return together
    for user in tenant.users.values():
        if not any(s.sku_id in failing for s in user.states):
            continue
        held = _held_plans(user, tenant)
        for sku_id in failing & held.keys():
            for other, plans in held.items():
                if other != sku_id:
                    together[(sku_id, other)].add((held[sku_id], plans))
    return together


def prohibited_seen(tenant: Tenant) -> dict[str, frozenset[str]]:
    """Product -> usage locations at which this tenant shows ProhibitedInUsageLocationViolation.

    Not where another user holds the product (Active): there the error is a group's other
    product failing (all-or-none fails every product of the group with it)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for user in tenant.users.values():
        location = effective_location(user, tenant)
        for state in user.states:
            if location and normalize_error(state.error) == PROHIBITED_IN_USAGE_LOCATION:
                seen[state.sku_id].add(location)
    allowed = working_locations(tenant)
    found = {k: frozenset(v - allowed.get(k, set())) for k, v in seen.items()}
    return {k: v for k, v in found.items() if v}
