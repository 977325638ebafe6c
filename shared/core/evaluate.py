"""One evaluation of a tenant: effective licenses, findings per user, group and SKU.

This is the single entry point later stages call (the CLI, the recompute queue worker, the
nightly reconciliation). Pure: the caller brings the tenant and any friendly product names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain

from shared.core.effective import (
    EffectiveLicense,
    PathCache,
    effective_licenses_for_user,
    licensed_groups_by_user,
)
from shared.core.findings import COUNT_VIOLATION, Finding, FindingCounts, Names, finding_counts
from shared.core.group_findings import group_findings
from shared.core.model import Group, Sku, Tenant, User, normalize_error, seat_shortfall
from shared.core.pending_findings import PendingAssignments, pending_findings
from shared.core.plan_conflicts import PlanConflict
from shared.core.sku_findings import sku_findings
from shared.core.usage_locations import WorkingLocations
from shared.core.user_findings import (
    Memberships,
    only_pending,
    user_findings,
)

_NEEDS_A_SEAT = frozenset({None, COUNT_VIOLATION})
"""Errors of a failed path that a free seat fixes (None: Graph names no reason)."""


@dataclass(frozen=True, slots=True)
class UserReport:
    """A user's effective licenses and findings: `findings`, the pending ones first.

    A new licensing group leaves hundreds of thousands of members with pending assignments
    that differ only in the user, in a few thousand combinations of groups. `pending` is the
    combination's shared tuple, `listed` the user's other findings; `findings` builds the
    pending ones the first time it is read. The evaluate renderers and the summary work from
    `pending` instead: no `Finding`, message string or message encoding per membership (about
    a microsecond each, for 400k memberships; docs/performance.md).
    """

    user: User
    licenses: tuple[EffectiveLicense, ...]
    listed: tuple[Finding, ...]
    pending: PendingAssignments = ()
    _findings: tuple[Finding, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding about the user, the pending ones (built once, when first read) first."""
        found = self._findings
        if found is None:
            found = self.listed
            if self.pending:
                user = self.user
                found = (*pending_findings(user.id, user.display_name, self.pending), *found)
            object.__setattr__(self, "_findings", found)
        return found

    @property
    def has_findings(self) -> bool:
        return bool(self.pending or self.listed)

    def with_finding(self, finding: Finding) -> UserReport:
        """The same report with one more finding, last."""
        return replace(self, listed=(*self.listed, finding))


@dataclass(frozen=True, slots=True)
class GroupReport:
    group: Group
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class SkuReport:
    sku: Sku
    demand: int
    """Users who would take a seat: holders, users waiting for one and pending members; not
    those whose every path to the SKU failed for another reason (a seat would not fix it)."""
    findings: tuple[Finding, ...]

    @property
    def shortfall(self) -> int:
        return seat_shortfall(self.demand, self.sku.prepaid.enabled)


@dataclass(frozen=True, slots=True)
class Evaluation:
    users: tuple[UserReport, ...]
    groups: tuple[GroupReport, ...]
    skus: tuple[SkuReport, ...]

    def findings(self) -> list[Finding]:
        """All findings: users', then groups', then SKUs'."""
        found = [f for u in self.users for f in u.findings]
        found += [f for g in self.groups for f in g.findings]
        found += [f for s in self.skus for f in s.findings]
        return found

    def seat_demand(self) -> dict[str, int]:
        """Each SKU's `SkuReport.demand`, SKUs nobody needs a seat of left out: what a scan
        adds up page by page."""
        return {s.sku.id: s.demand for s in self.skus if s.demand}

    def finding_counts(self) -> FindingCounts:
        """`finding_counts(self.findings())`, without building the users' pending findings.

        Each (severity, code) comes in the order `findings()` first shows it: the reports'
        summaries keep that order between equal counts."""
        users = self.users
        first = next((n for n, u in enumerate(users) if u.pending), len(users))
        counts = finding_counts(chain.from_iterable(u.listed for u in users[:first]))
        pending = Counter(chain.from_iterable(u.pending for u in users))
        for entry, count in pending.items():
            # each (SKU, group) once, counted for every user who has it
            (finding,) = pending_findings("", "", (entry,))
            counts[(finding.severity, finding.code, finding.group_id)] += count
        counts.update(
            finding_counts(
                chain(
                    chain.from_iterable(u.listed for u in users[first:]),
                    chain.from_iterable(g.findings for g in self.groups),
                    chain.from_iterable(s.findings for s in self.skus),
                )
            )
        )
        return counts


def evaluate(
    tenant: Tenant,
    product_names: Mapping[str, str] | None = None,
    plan_names: Mapping[str, str] | None = None,
    conflicts: Sequence[PlanConflict] = (),
) -> Evaluation:
    """Evaluate every user, licensed group and SKU; names (by GUID) only make messages readable.

    `conflicts`: the table of conflicting plans (`shared.catalog.plan_conflicts`), which tells
    a MutuallyExclusiveViolation Microsoft has lifted (reprocess it) from one that still holds.
    """
    names = Names(tenant, product_names, plan_names)
    index = licensed_groups_by_user(tenant.groups.values())
    cache = PathCache(tenant.skus)
    memberships = Memberships(tenant, names)
    locations = WorkingLocations(tenant)
    # Users who hold the same licenses share one tuple: count holders per tuple, by identity
    # (cheaper than hashing its contents), and the seats per SKU once per tuple at the end;
    # a user with a path that failed for a reason other than seats is counted on their own.
    holders: Counter[int] = Counter()
    held: dict[int, tuple[EffectiveLicense, ...]] = {}
    demand: Counter[str] = Counter()
    users = []
    # users with only pending findings (`only_pending`), by their combination's identity
    combinations: dict[int, tuple[object, tuple[EffectiveLicense, ...], PendingAssignments]] = {}
    for user in tenant.users.values():
        member_of = index.get(user.id, ())
        if only_pending(user):
            known = combinations.get(id(member_of))
            if known is None:
                licenses = effective_licenses_for_user(user, member_of, tenant.skus, cache)
                known = (member_of, licenses, memberships.of(member_of)[1])
                combinations[id(member_of)] = known
                held[id(licenses)] = licenses
            holders[id(known[1])] += 1
            users.append(UserReport(user, known[1], (), known[2]))
            continue
        licenses = effective_licenses_for_user(user, member_of, tenant.skus, cache)
        failed = failed_paths(user) if user.states else None
        if failed:
            demand.update(_seat_skus(licenses, failed))
        else:
            holders[id(licenses)] += 1
            held[id(licenses)] = licenses
        pending, findings = user_findings(
            user, licenses, member_of, tenant, names, memberships, conflicts, locations
        )
        users.append(UserReport(user, licenses, tuple(findings), pending))
    for key, count in holders.items():
        for lic in held[key]:
            demand[lic.sku_id] += count
    groups = tuple(
        GroupReport(g, tuple(group_findings(g, tenant, names)))
        for g in tenant.groups.values()
        if g.licenses
    )
    skus = tuple(
        SkuReport(s, demand[s.id], tuple(sku_findings(s, demand[s.id], names)))
        for s in tenant.skus.values()
    )
    return Evaluation(tuple(users), groups, skus)


def failed_paths(user: User) -> frozenset[tuple[str, str | None]]:
    """The user's paths (SKU, group or None) in state Error (the user lacks their products)
    for a reason a seat does not fix."""
    return frozenset(
        (s.sku_id, s.assigned_by_group)
        for s in user.states
        if s.state == "Error" and normalize_error(s.error) not in _NEEDS_A_SEAT
    )


def _seat_skus(
    licenses: tuple[EffectiveLicense, ...], failed: frozenset[tuple[str, str | None]]
) -> list[str]:
    """The SKUs the user needs a seat of: those with a path that works, waits for a seat
    (CountViolation) or is still pending. A path failing for another reason (usage location,
    a plan conflict, a dependency...) would not take a seat if one were bought for it."""
    return [
        lic.sku_id
        for lic in licenses
        if any((lic.sku_id, p.group_id) not in failed for p in lic.paths)
    ]
