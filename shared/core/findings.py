"""Findings: what is wrong (or worth knowing) about a user, group or SKU, and where to fix it.

The vocabulary every stage shares: severities, the finding codes (those Graph reports on
licenseAssignmentState.error and those we derive), the `Finding` record, readable `Names` and
the texts that say *where* a fix is made. The builders live apart: `reported_findings` (Graph's
errors), `user_findings`, `group_findings` and `sku_findings`.

Every finding has a stable `key` (subject + SKU + code + group): later stages deduplicate,
store and alert on it. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from operator import attrgetter
from typing import NamedTuple

from shared.core.model import AssignmentState, Group, Tenant, User

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
"""Most severe first; reports sort and count findings by it."""

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

GROUP_REPROCESS = (
    "reprocess the group's users in error in the Microsoft 365 admin center (Billing > "
    "Licenses > the product > Groups > the group: select them, then Reprocess)"
)
"""Where a group's members are reprocessed by hand: group-based licensing is managed in the
Microsoft 365 admin center since September 2024 (the Entra admin center's group Reprocess is
gone), and Graph v1.0 has no group reprocess."""

SEATS_OF = "seatsOf="
"""Evidence of a CountViolation on a product that has free seats: the group's other product
the user lacks a seat of (`seatsOf=<skuId>`, all-or-none). Its seats, not this product's,
decide whether a reprocess can help."""

HELD_ELSEWHERE = "heldElsewhere"
"""Evidence of a CountViolation whose product the user already holds through another path (it
takes no second seat): only the `SEATS_OF` products' seats decide whether a reprocess can
help, not this product's."""

LIFTED_CONFLICT = "liftedConflict="
"""Evidence of a MutuallyExclusiveViolation that only pairs Microsoft has since allowed together
explain (`liftedConflict=PLAN_A+PLAN_B`): Microsoft says to reprocess it, so the reprocess
policy does not wait for a change."""


FAILED_WITH = "failedWith="
"""Evidence of a MutuallyExclusiveViolation or ProhibitedInUsageLocationViolation of a group's
product that failed only with its group's other product (all-or-none): the product at fault
(`failedWith=<skuId>`), for the reprocess policy's alert to name. Not watched for a change
(`watched_evidence`): which product is at fault is read from the conflicts table and, for a
usage location, from where other users hold each product, and a fix changes the rest."""


class Finding(NamedTuple):
    """One thing an admin may need to know, with the fix and where to make it.

    `evidence` holds what the cause depends on (for example the usage location at the time),
    so the reprocess policy can tell whether the cause may have changed. `since` is Graph's
    lastUpdatedDateTime of the failing assignment, when there is one. `safe` is set on
    RedundantDirectAssignment only.

    A named tuple, not a frozen dataclass: a tenant with a new licensing group has hundreds of
    thousands of findings, and a tuple is built several times faster (immutable all the same).
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
    part: str | None = None
    """A second object the finding is about, when one subject carries several findings of a
    code (the nested group of a NestedGroupMember): it ends the key, so each pair is its own."""

    @property
    def key(self) -> str:
        key = f"{self.subject}|{self.sku_id or '-'}|{self.code}|{self.group_id or '-'}"
        return f"{key}|{self.part}" if self.part else key

    @property
    def user_id(self) -> str | None:
        return None if ":" in self.subject else self.subject


def seats_of(finding: Finding) -> tuple[str, ...]:
    """The SKUs a CountViolation's group waits for a seat of besides its own (`SEATS_OF`)."""
    return tuple(e.removeprefix(SEATS_OF) for e in finding.evidence if e.startswith(SEATS_OF))


def seat_skus(finding: Finding) -> tuple[str, ...]:
    """The SKUs whose free seats a reprocess of a CountViolation finding needs: its own (unless
    `HELD_ELSEWHERE`) and each `seats_of`."""
    own = () if HELD_ELSEWHERE in finding.evidence else (finding.sku_id or "",)
    return tuple(dict.fromkeys((*own, *seats_of(finding))))


def failed_with(finding: Finding) -> tuple[str, ...]:
    """The group's products at fault that a finding's product failed with (`FAILED_WITH`)."""
    return tuple(e.removeprefix(FAILED_WITH) for e in finding.evidence if e.startswith(FAILED_WITH))


def watched_evidence(finding: Finding) -> tuple[str, ...]:
    """The evidence the reprocess policy watches for a change: all but `FAILED_WITH`."""
    return tuple(e for e in finding.evidence if not e.startswith(FAILED_WITH))


def finding_fields(finding: Finding) -> dict[str, str | None]:
    """The finding as its stored rows and JSON reports both name it (camelCase, same order)."""
    return {
        "key": finding.key,
        "code": finding.code,
        "severity": finding.severity,
        "skuId": finding.sku_id,
        "groupId": finding.group_id,
        "message": finding.message,
        "remedy": finding.remedy,
    }


FindingCounts = Counter[tuple[str, str, str | None]]
"""How many findings of each (severity, code, group id): what the reports' summaries count."""


def finding_counts(findings: Iterable[Finding]) -> FindingCounts:
    # counted in C (map over attrgetter): a tenant with a new licensing group has 400k findings
    return Counter(map(attrgetter("severity", "code", "group_id"), findings))


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


def state_finding(
    code: str,
    severity: str,
    user: User,
    state: AssignmentState,
    *,
    message: str,
    remedy: str,
    plans: tuple[str, ...] = (),
    evidence: tuple[str, ...] = (),
) -> Finding:
    """A finding about one of the user's assignments: its SKU, its group and Graph's time."""
    return Finding(
        code,
        severity,
        user.id,
        state.sku_id,
        state.assigned_by_group,
        message,
        remedy,
        plans=plans,
        since=state.last_updated,
        evidence=evidence,
    )


def user_finding(
    code: str,
    severity: str,
    user: User,
    sku_id: str | None,
    *,
    message: str,
    remedy: str,
    plans: tuple[str, ...] = (),
    evidence: tuple[str, ...] = (),
    safe: bool | None = None,
) -> Finding:
    """A finding about a user (and maybe one SKU) that no single assignment carries."""
    return Finding(
        code,
        severity,
        user.id,
        sku_id,
        None,
        message,
        remedy,
        plans=plans,
        evidence=evidence,
        safe=safe,
    )


def service_finding(code: str, service: str, *, message: str, remedy: str) -> Finding:
    """An error in License Guard itself: subject `service:<service>`, no SKU and no group."""
    return Finding(code, ERROR, f"service:{service}", None, None, message, remedy)


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
    if user.synced_from_on_premises and attribute == "usageLocation":
        # AD has no usageLocation: Entra Connect's default rules fill it from msExchUsageLocation
        # when that is set, over any cloud value; while it is empty, a cloud edit stands
        return (
            "set msExchUsageLocation in on-premises Active Directory and let Entra Connect "
            "sync it to usageLocation (a cloud edit in the Microsoft 365 admin center stands "
            "only while msExchUsageLocation is empty: the synced value overwrites it)"
        )
    if user.synced_from_on_premises:
        return (
            f"set {attribute} in on-premises Active Directory and let Entra Connect sync "
            "(a cloud edit is overwritten by the next sync)"
        )
    return f"set {attribute} in the Microsoft 365 admin center (Users > Active users > the user)"


def tenant_country(tenant: Tenant) -> str | None:
    """The organization's country, which group-based licensing uses for an unset usage location."""
    return tenant.organization.country if tenant.organization else None
