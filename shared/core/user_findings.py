"""Every finding about one user: Graph's reported errors and what Graph does not flag.

Comparing the effective licenses (what Entra should apply) with Graph's states reveals pending
and stale group assignments, plan mismatches, a missing usage location, licensed disabled
accounts and direct assignments that a group already covers. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shared.core.coverage_findings import coverage_finding
from shared.core.direct_coverage import direct_coverage
from shared.core.effective import EffectiveLicense
from shared.core.findings import (
    DEPENDENCY_VIOLATION,
    INFO,
    LICENSED_DISABLED_ACCOUNT,
    MISSING_USAGE_LOCATION,
    PLAN_MISMATCH,
    STALE_GROUP_ASSIGNMENT,
    WARNING,
    Finding,
    Names,
    membership_fix,
    state_finding,
    tenant_country,
    user_attribute_fix,
    user_finding,
)
from shared.core.model import (
    AssignmentState,
    Group,
    LicenseAssignment,
    Tenant,
    User,
    state_error,
)
from shared.core.pending_findings import (
    PENDING_REMEDY,
    PROCESSED_REMEDY,
    PendingAssignment,
    PendingAssignments,
    pending_findings,
)
from shared.core.plan_conflicts import PlanConflict
from shared.core.reported_findings import reported_finding
from shared.core.usage_locations import WorkingLocations


class Memberships:
    """What each combination of licensed groups asks of its members, worked out once.

    The assignments its groups should give (by SKU and group) and the pending ones: a new
    licensing group leaves hundreds of thousands of members pending, most of them in a few
    thousand combinations of groups.
    """

    def __init__(self, tenant: Tenant, names: Names) -> None:
        self._tenant = tenant
        self._names = names
        self._entries: dict[tuple[str, str], PendingAssignment] = {}
        # keyed on the combination's identity (`licensed_groups_by_user` shares one tuple per
        # combination); the value keeps the object alive so its id cannot be reused
        self._combinations: dict[int, tuple[object, _Desired, PendingAssignments]] = {}
        self._groups: dict[str, tuple[Group, _Desired, PendingAssignments]] = {}

    def of(self, member_of: Iterable[Group]) -> tuple[_Desired, PendingAssignments]:
        """The desired assignments, and each as pending, in order."""
        cached = self._combinations.get(id(member_of))
        if cached is None:
            groups = tuple(member_of)
            desired: _Desired = {}
            pending: list[PendingAssignment] = []
            if len({g.id for g in groups}) == len(groups):
                for group in groups:  # each group's keys are its own: no key in two groups
                    group_desired, group_pending = self._group(group)
                    desired.update(group_desired)
                    pending += group_pending
            else:  # a group twice: its assignments once
                desired = {(lic.sku_id, g.id): lic for g in groups for lic in g.licenses}
                skus = self._tenant.skus
                pending = [self._pending(sku, group) for sku, group in desired if sku in skus]
            cached = self._combinations[id(member_of)] = (member_of, desired, tuple(pending))
        return cached[1], cached[2]

    def _group(self, group: Group) -> tuple[_Desired, PendingAssignments]:
        """One group's part of `of`: its assignments, and each as pending."""
        cached = self._groups.get(group.id)
        if cached is None or cached[0] is not group:
            desired = {(lic.sku_id, group.id): lic for lic in group.licenses}
            # a SKU gone from subscribedSkus is assigned to nobody: not pending, however long
            skus = self._tenant.skus
            pending = tuple(self._pending(sku, g) for sku, g in desired if sku in skus)
            cached = self._groups[group.id] = (group, desired, pending)
        return cached[1], cached[2]

    def _pending(self, sku_id: str, group_id: str) -> PendingAssignment:
        entry = self._entries.get((sku_id, group_id))
        if entry is None:
            group = self._tenant.groups.get(group_id)
            state = group.processing_state if group else None
            names = self._names
            entry = self._entries[(sku_id, group_id)] = PendingAssignment(
                sku_id,
                group_id,
                f" is a member of {names.group(group_id)}, which assigns "
                f"{names.product(sku_id)}, but Graph shows no assignment from it yet"
                + (f" (group processing state: {state})." if state else "."),
                PROCESSED_REMEDY if state == "ProcessingComplete" else PENDING_REMEDY,
            )
        return entry


_Desired = dict[tuple[str, str], LicenseAssignment]


def only_pending(user: User) -> bool:
    """Are the user's findings no more than their groups' pending assignments?

    So for a user with no states (nothing reported, no direct path: their effective licenses
    are their groups'), a usage location and an enabled account: `user_findings` gives them
    their combination's pending tuple and nothing else. Most users of a tenant whose new
    licensing groups are not processed yet; `evaluate` does their work once per combination.
    """
    return not user.states and bool(user.usage_location) and user.account_enabled


def user_findings(
    user: User,
    licenses: tuple[EffectiveLicense, ...],
    member_of: Iterable[Group],
    tenant: Tenant,
    names: Names,
    memberships: Memberships,
    conflicts: Sequence[PlanConflict] = (),
    locations: WorkingLocations | None = None,
) -> tuple[PendingAssignments, list[Finding]]:
    """Every finding about one user, in a stable order, as (pending, findings): the pending
    ones (`pending_findings`) first, then the others.

    A user Graph shows nothing from a group for (the common case after a new licensing group)
    gets the combination's shared pending tuple, not built as findings; for any other user
    the pending findings are built after the states' findings, and `pending` is empty.

    `memberships`: one per evaluation, shared by its users (see `Memberships`); `conflicts`:
    the table of conflicting plans, `locations` where the tenant's products work, one per
    evaluation (`reported_finding`).
    """
    desired, pending = memberships.of(member_of)
    findings: list[Finding] = []
    if user.states:
        findings = _state_findings(user, desired, tenant, names, conflicts, locations)
        reported = {(s.sku_id, s.assigned_by_group) for s in user.states if s.assigned_by_group}
        if findings or reported:
            # the pending findings follow the states' findings
            missing = [p for p in pending if (p.sku_id, p.group_id) not in reported]
            findings += pending_findings(user.id, user.display_name, missing)
            pending = ()

    if not user.usage_location and (licenses or user.assigned_licenses):
        findings.append(_missing_usage_location(user, tenant))
    if not user.account_enabled:
        findings.extend(
            _licensed_disabled(user, lic.sku_id, licenses, tenant, names)
            for lic in user.assigned_licenses
        )
    for lic in licenses:
        if len(lic.paths) < 2:
            continue  # no direct path covered by a group: the common case, checked inline
        coverage = direct_coverage(user, lic)
        if coverage is not None:
            findings.append(coverage_finding(user, coverage, names))
    return pending, findings


def _state_findings(
    user: User,
    desired: _Desired,
    tenant: Tenant,
    names: Names,
    conflicts: Sequence[PlanConflict],
    locations: WorkingLocations | None,
) -> list[Finding]:
    """Findings from Graph's states: reported errors, stale and mismatched group assignments."""
    findings: list[Finding] = []

    def reported(state: AssignmentState, code: str) -> Finding:
        return reported_finding(user, state, code, tenant, names, conflicts, locations)

    for state in user.states:
        code = state_error(state)
        if state.assigned_by_group is None:
            if code:
                findings.append(reported(state, code))
            continue
        wanted = desired.get((state.sku_id, state.assigned_by_group))
        if wanted is None:
            # The user left the group, or the group dropped the SKU. A DependencyViolation, or
            # an error on a path the user still holds (a proxy address conflict), is Entra
            # failing the removal: report that once, not also as stale.
            if code == DEPENDENCY_VIOLATION or (code and state.state == "ActiveWithError"):
                findings.append(reported(state, code))
            else:
                findings.append(_stale(user, state, tenant, names))
        elif code:
            findings.append(reported(state, code))
        elif state.disabled_plans != wanted.disabled_plans and _plans_differ(state, wanted, tenant):
            findings.append(_plan_mismatch(user, state, wanted.disabled_plans, tenant, names))
    return findings


def _plans_differ(state: AssignmentState, wanted: LicenseAssignment, tenant: Tenant) -> bool:
    """Do the two disable different plans of the SKU? A plan the SKU no longer has (Microsoft
    took it out; the group still names it) switches nothing off either way."""
    sku = tenant.skus.get(state.sku_id)
    if sku is None:
        return True
    return state.disabled_plans & sku.plan_ids != wanted.disabled_plans & sku.plan_ids


def _stale(user: User, state: AssignmentState, tenant: Tenant, names: Names) -> Finding:
    group = tenant.groups.get(state.assigned_by_group or "")
    product = names.product(state.sku_id)
    label = names.group(state.assigned_by_group)
    if group is None:
        why = f"{label} no longer exists"
    elif user.id not in group.member_user_ids:
        why = f"the user is no longer a direct member of {label}"
    else:
        why = f"{label} no longer assigns {product}"
    return state_finding(
        STALE_GROUP_ASSIGNMENT,
        WARNING,
        user,
        state,
        message=(
            f"Graph still shows {product} on {user.display_name} from {label}, but {why}; "
            "Entra has not processed the removal yet."
        ),
        remedy=(
            "Usually this clears once Entra finishes processing the group. If it persists "
            "after the group shows 'ProcessingComplete', reprocess the user."
        ),
    )


def _plan_mismatch(
    user: User, state: AssignmentState, wanted: frozenset[str], tenant: Tenant, names: Names
) -> Finding:
    actual = names.plans(state.sku_id, state.disabled_plans)
    expected = names.plans(state.sku_id, wanted)
    return state_finding(
        PLAN_MISMATCH,
        WARNING,
        user,
        state,
        message=(
            f"{names.group(state.assigned_by_group)} disables "
            f"[{', '.join(expected) or 'nothing'}] in {names.product(state.sku_id)}, but Graph "
            f"shows [{', '.join(actual) or 'nothing'}] disabled for {user.display_name}."
        ),
        remedy=(
            "Usually a group license change still being processed. If it persists after the "
            "group shows 'ProcessingComplete', reprocess the user."
        ),
        plans=tuple(sorted(set(actual) ^ set(expected))),
    )


def _missing_usage_location(user: User, tenant: Tenant) -> Finding:
    country = tenant_country(tenant)
    inherits = f"the tenant's country ({country})" if country else "the tenant's country"
    return user_finding(
        MISSING_USAGE_LOCATION,
        INFO,
        user,
        None,
        message=(
            f"{user.display_name} has no usage location; group-based licensing uses "
            f"{inherits} instead, which may be wrong for local service availability (a direct "
            "assignment needs a usage location set)."
        ),
        remedy=f"Set the usage location: {user_attribute_fix(user, 'usageLocation')}.",
    )


def _licensed_disabled(
    user: User,
    sku_id: str,
    licenses: tuple[EffectiveLicense, ...],
    tenant: Tenant,
    names: Names,
) -> Finding:
    groups = [p.group_id for lic in licenses if lic.sku_id == sku_id for p in lic.group_paths]
    where = "; ".join(membership_fix(tenant.groups.get(g or ""), names, g) for g in groups)
    return user_finding(
        LICENSED_DISABLED_ACCOUNT,
        INFO,
        user,
        sku_id,
        message=(
            f"{user.display_name}'s account is disabled but still consumes a seat of "
            f"{names.product(sku_id)}."
        ),
        remedy=(
            "If the person has left, remove the license (leave the licensing groups, or remove "
            "the direct assignment) once mailbox and OneDrive data are retained as policy asks."
            + (f" Leaving the groups: {where}." if where else "")
        ),
    )
