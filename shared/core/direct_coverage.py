"""How well a user's group paths for one SKU cover their direct assignment of it.

One rule for two readers: the RedundantDirectAssignment/DirectOnlyPlans findings and the
migration plan (which direct assignments can go). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.effective import EffectiveLicense
from shared.core.model import User, normalize_error, state_error


@dataclass(frozen=True, slots=True)
class DirectCoverage:
    """How well a user's group paths for one SKU cover their direct assignment of it.

    `direct_only`: plans only the direct assignment enables (removing it would lose them).
    `unhealthy_group_ids`: covering groups whose path Graph does not show as Active without
    errors and with every plan the group enables (not a PlanMismatch still being processed).
    The direct assignment is a safe removal candidate when both are empty. One function for
    the RedundantDirectAssignment/DirectOnlyPlans findings and the migration plan.
    """

    sku_id: str
    group_ids: tuple[str | None, ...]
    direct_only: frozenset[str]
    unhealthy_group_ids: tuple[str | None, ...]

    @property
    def covered(self) -> bool:
        return not self.direct_only

    @property
    def safe(self) -> bool:
        return not self.direct_only and not self.unhealthy_group_ids


def direct_coverage(user: User, lic: EffectiveLicense) -> DirectCoverage | None:
    """The coverage of a direct assignment by group paths; None unless the SKU has both."""
    direct = lic.direct_path
    if direct is None or len(lic.paths) < 2:
        return None
    group_enabled = frozenset().union(*(p.enabled_plans for p in lic.group_paths))
    group_ids = tuple(p.group_id for p in lic.group_paths)
    unhealthy = tuple(
        p.group_id
        for p in lic.group_paths
        if not _healthy_group_path(user, lic.sku_id, p.group_id, p.enabled_plans)
    )
    return DirectCoverage(lic.sku_id, group_ids, direct.enabled_plans - group_enabled, unhealthy)


@dataclass(frozen=True, slots=True)
class UnreadyPath:
    """Why a covering group path is not healthy yet: mid-migration mostly a path Entra has not
    processed yet (to wait for), sometimes one in error (to fix).

    `state`: Graph's state of the path, None when Graph shows none (Entra has not applied the
    group to the user yet); `error`: its error, None when there is nothing to fix."""

    group_id: str | None
    state: str | None
    error: str | None


def unready_paths(
    user: User, sku_id: str, group_ids: tuple[str | None, ...]
) -> tuple[UnreadyPath, ...]:
    """Each of `group_ids` (a coverage's `unhealthy_group_ids`) with what Graph shows of its
    path for `sku_id`: for the RedundantDirectAssignment finding and the migration reports."""
    states = {(s.sku_id, s.assigned_by_group): s for s in user.states}
    found = []
    for group_id in group_ids:
        state = states.get((sku_id, group_id))
        if state is None:
            found.append(UnreadyPath(group_id, None, None))
        else:
            found.append(UnreadyPath(group_id, state.state, state_error(state)))
    return tuple(found)


def _healthy_group_path(
    user: User, sku_id: str, group_id: str | None, enabled_plans: frozenset[str]
) -> bool:
    """Graph shows the path Active without error, and applying every plan the group enables
    (a state that still disables one is a group change Entra has not processed yet)."""
    return any(
        s.sku_id == sku_id
        and s.assigned_by_group == group_id
        and s.state == "Active"
        and normalize_error(s.error) is None
        and not enabled_plans & s.disabled_plans
        for s in user.states
    )
