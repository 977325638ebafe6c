"""Findings: what is wrong (or worth knowing) about a user, group or SKU, and the fix.

Two sources feed them. Graph reports assignment errors on each licenseAssignmentState; we pass
those on with a plain-language cause and a remedy that says *where* to act. And comparing the
effective licenses (what Entra should apply) with Graph's states reveals what Graph does not
flag: pending and stale group assignments, plan mismatches, nested groups that grant nothing,
direct assignments that a group already covers, and seat shortfalls before they turn into
CountViolation errors.

Every finding has a stable `key` (subject + SKU + code + group): later stages deduplicate,
store and alert on it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.core.effective import EffectiveLicense
from shared.core.model import (
    AssignmentState,
    Group,
    LicenseAssignment,
    Sku,
    Tenant,
    User,
    normalize_error,
)

ERROR = "error"
WARNING = "warning"
INFO = "info"

# Codes Graph reports on licenseAssignmentState.error.
COUNT_VIOLATION = "CountViolation"
MUTUALLY_EXCLUSIVE = "MutuallyExclusiveViolation"
DEPENDENCY_VIOLATION = "DependencyViolation"
PROHIBITED_IN_USAGE_LOCATION = "ProhibitedInUsageLocationViolation"
UNIQUENESS_VIOLATION = "UniquenessViolation"
OTHER = "Other"
REPORTED_CODES = frozenset(
    {
        COUNT_VIOLATION,
        MUTUALLY_EXCLUSIVE,
        DEPENDENCY_VIOLATION,
        PROHIBITED_IN_USAGE_LOCATION,
        UNIQUENESS_VIOLATION,
        OTHER,
    }
)

# Codes we derive by comparing effective licenses with Graph's states.
PENDING_GROUP_ASSIGNMENT = "PendingGroupAssignment"
STALE_GROUP_ASSIGNMENT = "StaleGroupAssignment"
PLAN_MISMATCH = "PlanMismatch"
MISSING_USAGE_LOCATION = "MissingUsageLocation"
LICENSED_DISABLED_ACCOUNT = "LicensedDisabledAccount"
NESTED_GROUP_MEMBER = "NestedGroupMember"
REDUNDANT_DIRECT_ASSIGNMENT = "RedundantDirectAssignment"
DIRECT_ONLY_PLANS = "DirectOnlyPlans"
SEAT_SHORTFALL = "SeatShortfall"
SUBSCRIPTION_AT_RISK = "SubscriptionAtRisk"

ADMIN_CENTER_LICENSES = "Microsoft 365 admin center > Billing > Licenses"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an admin may need to know, with the fix and where to make it.

    `evidence` holds what the cause depends on (for example the usage location at the time),
    so the reprocess policy can tell whether the cause may have changed. `since` is Graph's
    lastUpdatedDateTime of the failing assignment, when there is one. `safe` is set on
    RedundantDirectAssignment only.
    """

    code: str
    severity: str
    subject: str
    sku_id: str | None
    group_id: str | None
    message: str
    remedy: str
    user_ids: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    since: str | None = None
    evidence: tuple[str, ...] = ()
    safe: bool | None = None

    @property
    def key(self) -> str:
        return f"{self.subject}|{self.sku_id or '-'}|{self.code}|{self.group_id or '-'}"

    @property
    def user_id(self) -> str | None:
        return None if ":" in self.subject else self.subject


class Names:
    """Readable names for messages: friendly product names when known, else part numbers."""

    def __init__(
        self,
        tenant: Tenant,
        product_names: Mapping[str, str] | None = None,
        plan_names: Mapping[str, str] | None = None,
    ) -> None:
        self._tenant = tenant
        self._products = product_names or {}
        self._plans = plan_names or {}
        self.pending_texts: dict[tuple[str, str | None], str] = {}
        """The user-independent part of each (SKU, group) pending message, built once."""

    def product(self, sku_id: str) -> str:
        sku = self._tenant.skus.get(sku_id)
        part = sku.part_number if sku else sku_id
        friendly = self._products.get(sku_id)
        return f"{friendly} ({part})" if friendly and friendly != part else part

    def group(self, group_id: str | None) -> str:
        group = self._tenant.groups.get(group_id or "")
        return f"'{group.name}'" if group else f"group {group_id}"

    def plans(self, sku_id: str, plan_ids: Iterable[str]) -> tuple[str, ...]:
        sku = self._tenant.skus.get(sku_id)
        return tuple(
            sorted(self._plans.get(p) or (sku.plan_name(p) if sku else p) for p in plan_ids)
        )


def membership_fix(group: Group | None, names: Names, group_id: str | None) -> str:
    """Where a group's membership is changed: on-prem AD for synced groups, the rule if dynamic."""
    label = names.group(group_id)
    if group is not None and group.synced_from_on_premises:
        return (
            f"{label} is synced from on-premises: change its membership in on-premises Active "
            "Directory, then let Entra Connect sync (or start a delta sync)"
        )
    if group is not None and group.membership_rule:
        return f"{label} is dynamic: change its membership rule or the user attributes it tests"
    return f"change the membership of {label} in the Entra admin center (Groups > Members)"


def user_attribute_fix(user: User, attribute: str) -> str:
    """Where a user attribute is fixed: on-prem AD for synced users, the admin centers otherwise."""
    if user.synced_from_on_premises:
        return (
            f"set {attribute} in on-premises Active Directory and let Entra Connect sync "
            "(a cloud edit is overwritten by the next sync)"
        )
    return f"set {attribute} in the Microsoft 365 admin center (Users > Active users > the user)"


# --------------------------------------------------------------------------- reported errors


def _reported_finding(
    user: User, state: AssignmentState, code: str, tenant: Tenant, names: Names
) -> Finding:
    product = names.product(state.sku_id)
    group = tenant.groups.get(state.assigned_by_group or "")
    via = "a direct assignment" if state.is_direct else names.group(state.assigned_by_group)
    severity = ERROR if state.state == "Error" else WARNING
    effect = (
        f"{user.display_name} does not have {product} from {via}"
        if severity == ERROR
        else f"{user.display_name}'s {product} from {via} works, but a later change failed"
    )
    all_or_none = ""
    if severity == ERROR and group is not None and len(group.licenses) > 1:
        all_or_none = (
            f" Because one product of {names.group(group.id)} failed, none of that group's "
            f"{len(group.licenses)} products are assigned to this user (all-or-none)."
        )
    cause, remedy, evidence = _cause_and_remedy(user, state, code, group, tenant, names)
    return Finding(
        code=code,
        severity=severity,
        subject=user.id,
        sku_id=state.sku_id,
        group_id=state.assigned_by_group,
        message=f"{effect}: {cause}.{all_or_none}",
        remedy=remedy,
        since=state.last_updated,
        evidence=evidence,
    )


def _cause_and_remedy(
    user: User,
    state: AssignmentState,
    code: str,
    group: Group | None,
    tenant: Tenant,
    names: Names,
) -> tuple[str, str, tuple[str, ...]]:
    product = names.product(state.sku_id)
    leave = (
        "remove the user from the group: " + membership_fix(group, names, group.id)
        if group
        else "remove the direct assignment"
    )
    if code == COUNT_VIOLATION:
        return (
            f"no free seats of {product} were left",
            f"Buy or free seats of {product} ({ADMIN_CENTER_LICENSES}), then reprocess the user: "
            "Entra does not retry by itself when seats become free (License Guard reprocesses "
            "automatically in act mode).",
            (),
        )
    if code == MUTUALLY_EXCLUSIVE:
        others = _other_paths(user, state)
        return (
            f"a service plan of {product} conflicts with a plan the user already holds from "
            "another license",
            "Decide which license wins: disable the conflicting plan in one of the assignments "
            f"({ADMIN_CENTER_LICENSES}) or {leave}. During a planned swap between groups this "
            "clears once the user leaves the old group; Entra never resolves it on its own.",
            others,
        )
    if code == DEPENDENCY_VIOLATION:
        return (
            "another plan the user holds depends on this license, so Entra kept it instead of "
            "removing it",
            f"Give the user the required plan through another path, or disable the dependent "
            f"plans first ({ADMIN_CENTER_LICENSES}), then reprocess the user.",
            (),
        )
    if code == PROHIBITED_IN_USAGE_LOCATION:
        location = user.usage_location or _tenant_country(tenant) or "unset"
        return (
            f"{product} may not be used in usage location {location}",
            "Correct the usage location if it is wrong ("
            + user_attribute_fix(user, "usageLocation")
            + f"), then reprocess the user; otherwise {leave}.",
            (f"usageLocation={user.usage_location or ''}",),
        )
    if code == UNIQUENESS_VIOLATION:
        return (
            "a proxy address of this user is already used by another object",
            "Remove the duplicate proxy address ("
            + user_attribute_fix(user, "proxyAddresses")
            + "; Exchange admin center for cloud objects), then reprocess the user.",
            (),
        )
    return (
        f"Entra reported an unclassified error ({state.error})",
        "Look up 'Change user license' for this user in the Entra audit log (Core Directory) "
        f"to see the reason, fix it, then reprocess the user ({ADMIN_CENTER_LICENSES}).",
        (),
    )


def _other_paths(user: User, state: AssignmentState) -> tuple[str, ...]:
    return tuple(
        sorted(
            f"{s.sku_id}:{s.assigned_by_group or 'direct'}"
            for s in user.states
            if s is not state and normalize_error(s.error) is None
        )
    )


def _tenant_country(tenant: Tenant) -> str | None:
    return tenant.organization.country if tenant.organization else None


# --------------------------------------------------------------------------- per user


def user_findings(
    user: User,
    licenses: tuple[EffectiveLicense, ...],
    member_of: Iterable[Group],
    tenant: Tenant,
    names: Names,
) -> list[Finding]:
    """Every finding about one user, in a stable order."""
    desired: dict[tuple[str, str | None], LicenseAssignment] = {
        (lic.sku_id, g.id): lic for g in member_of for lic in g.licenses
    }
    reported = {(s.sku_id, s.assigned_by_group) for s in user.states if s.assigned_by_group}
    findings: list[Finding] = []

    for state in user.states:
        code = None if state.error is None else normalize_error(state.error)
        if state.assigned_by_group is None:
            if code:
                findings.append(_reported_finding(user, state, code, tenant, names))
            continue
        wanted = desired.get((state.sku_id, state.assigned_by_group))
        if wanted is None:
            # The user left the group, or the group dropped the SKU. A DependencyViolation here
            # is Entra refusing the removal: report that once, not also as stale.
            if code == DEPENDENCY_VIOLATION:
                findings.append(_reported_finding(user, state, code, tenant, names))
            else:
                findings.append(_stale(user, state, tenant, names))
        elif code:
            findings.append(_reported_finding(user, state, code, tenant, names))
        elif state.disabled_plans != wanted.disabled_plans:
            findings.append(_plan_mismatch(user, state, wanted.disabled_plans, tenant, names))

    for sku_id, group_id in desired:
        if (sku_id, group_id) not in reported:
            findings.append(_pending(user, sku_id, group_id, tenant, names))

    if not user.usage_location and (licenses or user.assigned_licenses):
        findings.append(_missing_usage_location(user, tenant))
    if not user.account_enabled:
        findings.extend(
            _licensed_disabled(user, lic.sku_id, names) for lic in user.assigned_licenses
        )
    for lic in licenses:
        if len(lic.paths) < 2:
            continue  # no direct path covered by a group: the common case, checked inline
        coverage = direct_coverage(user, lic)
        if coverage is not None:
            findings.append(_direct_and_group(user, coverage, names))
    return findings


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
    return Finding(
        code=STALE_GROUP_ASSIGNMENT,
        severity=WARNING,
        subject=user.id,
        sku_id=state.sku_id,
        group_id=state.assigned_by_group,
        message=(
            f"Graph still shows {product} on {user.display_name} from {label}, but {why}; "
            "Entra has not processed the removal yet."
        ),
        remedy=(
            "Usually this clears once Entra finishes processing the group. If it persists "
            "after the group shows 'ProcessingComplete', reprocess the user."
        ),
        since=state.last_updated,
    )


_PENDING_REMEDY = (
    "Wait for Entra to process the group (large groups take hours). If the group shows "
    "'ProcessingComplete' and the license is still missing, reprocess the user."
)


def _pending(
    user: User, sku_id: str, group_id: str | None, tenant: Tenant, names: Names
) -> Finding:
    # A new licensing group leaves every member pending: hundreds of thousands of these, so
    # the part of the message that does not name the user is built once per (SKU, group).
    text = names.pending_texts.get((sku_id, group_id))
    if text is None:
        group = tenant.groups.get(group_id or "")
        state = group.processing_state if group else None
        text = names.pending_texts[(sku_id, group_id)] = (
            f" is a member of {names.group(group_id)}, which assigns "
            f"{names.product(sku_id)}, but Graph shows no assignment from it yet"
            + (f" (group processing state: {state})." if state else ".")
        )
    # positional: half the cost of keywords, which counts at this volume
    # (code, severity, subject, sku_id, group_id, message, remedy)
    return Finding(
        PENDING_GROUP_ASSIGNMENT,
        WARNING,
        user.id,
        sku_id,
        group_id,
        user.display_name + text,
        _PENDING_REMEDY,
    )


def _plan_mismatch(
    user: User, state: AssignmentState, wanted: frozenset[str], tenant: Tenant, names: Names
) -> Finding:
    actual = names.plans(state.sku_id, state.disabled_plans)
    expected = names.plans(state.sku_id, wanted)
    return Finding(
        code=PLAN_MISMATCH,
        severity=WARNING,
        subject=user.id,
        sku_id=state.sku_id,
        group_id=state.assigned_by_group,
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
        since=state.last_updated,
    )


def _missing_usage_location(user: User, tenant: Tenant) -> Finding:
    country = _tenant_country(tenant)
    inherits = f"the tenant's country ({country})" if country else "the tenant's country"
    return Finding(
        code=MISSING_USAGE_LOCATION,
        severity=INFO,
        subject=user.id,
        sku_id=None,
        group_id=None,
        message=(
            f"{user.display_name} has no usage location; group-based licensing uses "
            f"{inherits} instead, which may be wrong for local service availability (a direct "
            "assignment needs a usage location set)."
        ),
        remedy=f"Set the usage location: {user_attribute_fix(user, 'usageLocation')}.",
    )


def _licensed_disabled(user: User, sku_id: str, names: Names) -> Finding:
    return Finding(
        code=LICENSED_DISABLED_ACCOUNT,
        severity=INFO,
        subject=user.id,
        sku_id=sku_id,
        group_id=None,
        message=(
            f"{user.display_name}'s account is disabled but still consumes a seat of "
            f"{names.product(sku_id)}."
        ),
        remedy=(
            "If the person has left, remove the license (leave the licensing groups, or remove "
            "the direct assignment) once mailbox and OneDrive data are retained as policy asks."
        ),
    )


@dataclass(frozen=True, slots=True)
class DirectCoverage:
    """How well a user's group paths for one SKU cover their direct assignment of it.

    `direct_only`: plans only the direct assignment enables (removing it would lose them).
    `unhealthy_group_ids`: covering groups whose path Graph does not show as Active without
    errors. The direct assignment is a safe removal candidate when both are empty. One function
    for the RedundantDirectAssignment/DirectOnlyPlans findings and the migration plan.
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
    unhealthy = tuple(g for g in group_ids if not _healthy_group_path(user, lic.sku_id, g))
    return DirectCoverage(lic.sku_id, group_ids, direct.enabled_plans - group_enabled, unhealthy)


def _direct_and_group(user: User, coverage: DirectCoverage, names: Names) -> Finding:
    product = names.product(coverage.sku_id)
    groups = ", ".join(names.group(g) for g in coverage.group_ids)
    if coverage.direct_only:
        lost = names.plans(coverage.sku_id, coverage.direct_only)
        return Finding(
            code=DIRECT_ONLY_PLANS,
            severity=INFO,
            subject=user.id,
            sku_id=coverage.sku_id,
            group_id=None,
            message=(
                f"{user.display_name} holds {product} directly and through {groups}; removing "
                f"the direct assignment would lose {len(lost)} plan(s) only it grants: "
                f"{', '.join(lost)}."
            ),
            remedy=(
                "Keep the direct assignment, or first enable those plans in a licensing group "
                "the user belongs to (or add the user to one that has them)."
            ),
            plans=lost,
        )
    safe = coverage.safe
    verdict = (
        "safe to remove: every covering group path is active without errors"
        if safe
        else "not safe yet: "
        + ", ".join(names.group(g) for g in coverage.unhealthy_group_ids)
        + " is not active without errors"
    )
    return Finding(
        code=REDUNDANT_DIRECT_ASSIGNMENT,
        severity=INFO,
        subject=user.id,
        sku_id=coverage.sku_id,
        group_id=None,
        message=(
            f"{user.display_name}'s direct {product} is fully covered by {groups} (one seat "
            f"either way); removal candidate, {verdict}."
        ),
        remedy=(
            "Remove direct assignments gradually, a small batch first, and check the users keep "
            f"their services ({ADMIN_CENTER_LICENSES})."
            if safe
            else "Fix the group path first; do not remove the direct assignment until it is "
            "active without errors."
        ),
        safe=safe,
    )


def _healthy_group_path(user: User, sku_id: str, group_id: str | None) -> bool:
    return any(
        s.sku_id == sku_id
        and s.assigned_by_group == group_id
        and s.state == "Active"
        and normalize_error(s.error) is None
        for s in user.states
    )


# --------------------------------------------------------------------------- per group


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


# --------------------------------------------------------------------------- per SKU


def _users(count: int) -> str:
    return "1 user" if count == 1 else f"{count} users"


def sku_findings(sku: Sku, demand: int, names: Names) -> list[Finding]:
    """Seat forecast and subscription health for one SKU."""
    findings = []
    product = names.product(sku.id)
    shortfall = max(0, demand - sku.prepaid.enabled)
    if shortfall:
        findings.append(
            Finding(
                code=SEAT_SHORTFALL,
                severity=WARNING,
                subject=f"sku:{sku.id}",
                sku_id=sku.id,
                group_id=None,
                message=(
                    f"{demand} users should hold {product} but only {sku.prepaid.enabled} seats "
                    f"are enabled ({sku.consumed} consumed): {shortfall} user(s) will be left "
                    "with CountViolation errors. Which users Entra leaves out is not documented."
                ),
                remedy=(
                    f"Buy {shortfall} more seat(s) of {product} ({ADMIN_CENTER_LICENSES}) or "
                    "remove users from its licensing groups."
                ),
            )
        )
    at_risk = sku.prepaid.warning + sku.prepaid.suspended + sku.prepaid.locked_out
    if at_risk and (sku.consumed or demand):
        findings.append(
            Finding(
                code=SUBSCRIPTION_AT_RISK,
                severity=WARNING,
                subject=f"sku:{sku.id}",
                sku_id=sku.id,
                group_id=None,
                message=(
                    f"{product} has seats in warning ({sku.prepaid.warning}), suspended "
                    f"({sku.prepaid.suspended}) or locked-out ({sku.prepaid.locked_out}) state "
                    f"while in use by {_users(max(sku.consumed, demand))}: services stop, and data "
                    "is eventually deleted, if the subscription is not renewed."
                ),
                remedy=(
                    "Renew or reactivate the subscription (Microsoft 365 admin center > "
                    "Billing > Your products), or move users to another product before it lapses."
                ),
            )
        )
    return findings
