"""The tenant's own evidence for the what-if's predictions (`shared.core.predict`): the
product pairs its MutuallyExclusiveViolation states show conflicting, and the usage locations
its ProhibitedInUsageLocationViolation states show prohibited.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from shared.core.findings import MUTUALLY_EXCLUSIVE, PROHIBITED_IN_USAGE_LOCATION
from shared.core.model import Tenant, normalize_error
from shared.core.plan_conflicts import PlanConflict
from shared.core.reported_findings import conflicting_siblings
from shared.core.usage_locations import effective_location, working_locations


def conflicts_seen(tenant: Tenant, table: Sequence[PlanConflict] = ()) -> dict[str, frozenset[str]]:
    """Product -> products it conflicted with in this tenant's MutuallyExclusiveViolation states.

    An error names only the failing product; the other side is one of the products the user
    holds without error. Only the products common to every such user are kept, so a pair is
    recorded only when the evidence points at it. Not a group's product that failed only with
    its group's other product, which the conflicts `table` shows conflicting
    (all-or-none: `reported_findings.conflicting_siblings`, as the findings attribute it).
    """
    candidates: dict[str, set[str]] = {}
    for user in tenant.users.values():
        held = {s.sku_id for s in user.states if normalize_error(s.error) is None}
        for state in user.states:
            if normalize_error(state.error) != MUTUALLY_EXCLUSIVE or conflicting_siblings(
                user, state, tenant, table
            ):
                continue
            others = held - {state.sku_id}
            if state.sku_id in candidates:
                candidates[state.sku_id] &= others
            else:
                candidates[state.sku_id] = set(others)
    pairs: dict[str, set[str]] = defaultdict(set)
    for sku_id, others in candidates.items():
        for other in others:
            pairs[sku_id].add(other)
            pairs[other].add(sku_id)
    return {k: frozenset(v) for k, v in pairs.items()}


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
