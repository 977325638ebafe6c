"""What a MutuallyExclusiveViolation names: the two plans that clash and the assignments
holding them (`reported_findings`).

The admin centers no longer show which plans of which licenses conflict; the conflicts table
(`shared/data/plan-conflicts.csv`, handed in) does, for the pairs Microsoft documents. Each
active pair between a failing path and a license the user holds elsewhere is named, with where
each plan is switched off. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core import findings
from shared.core.model import AssignmentState, Tenant, User, normalize_error
from shared.core.plan_conflicts import PlanConflict


def plan_clashes(
    user: User,
    failing: Sequence[AssignmentState],
    tenant: Tenant,
    conflicts: Sequence[PlanConflict],
    names: findings.Names,
) -> list[tuple[str, str]]:
    """Each pair of plans the conflicts table keeps apart (not a lifted one) between a failing
    path and a license the user holds elsewhere, as (what clashes, what to disable), so the
    admin knows which two plans and which assignments hold them."""
    found: dict[tuple[str, ...], tuple[str, str]] = {}
    for state in failing:
        for other in user.states:
            if other.sku_id == state.sku_id or normalize_error(other.error):
                continue
            mine_plans, held = _enabled(state, tenant), _enabled(other, tenant)
            for row in (r for r in conflicts if r.active):
                for mine, mine_name, theirs, theirs_name in (
                    (row.plan_a, row.name_a, row.plan_b, row.name_b),
                    (row.plan_b, row.name_b, row.plan_a, row.name_a),
                ):
                    if mine in mine_plans and theirs in held:
                        key = (mine_name, theirs_name, other.sku_id, other.assigned_by_group or "")
                        found.setdefault(
                            key,
                            (
                                f"{mine_name} (in {names.product(state.sku_id)}) conflicts with "
                                f"{theirs_name}, which the user holds from "
                                f"{names.product(other.sku_id)} ({_via(other, names)})",
                                f"{mine_name} in {_assignment(state, names)}, or {theirs_name} "
                                f"in {_assignment(other, names)}",
                            ),
                        )
    return list(found.values())


def _enabled(state: AssignmentState, tenant: Tenant) -> set[str]:
    """The plans (ids, lower case) a path enables; none for a SKU gone from subscribedSkus."""
    sku = tenant.skus.get(state.sku_id)
    return {p.lower() for p in sku.plan_ids - state.disabled_plans} if sku else set()


def _via(state: AssignmentState, names: findings.Names) -> str:
    return "a direct assignment" if state.is_direct else names.group(state.assigned_by_group)


def _assignment(state: AssignmentState, names: findings.Names) -> str:
    """Where a path's plans are switched off: the user's direct assignment, or the group's."""
    product = names.product(state.sku_id)
    if state.is_direct:
        return f"the user's direct assignment of {product}"
    return f"the {product} that {names.group(state.assigned_by_group)} assigns"
