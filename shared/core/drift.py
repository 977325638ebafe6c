"""What changed between two states of a tenant: licensing configuration and users' licenses.

Two uses share this module. `license-guard diff OLD NEW` compares two snapshots: configuration
drift of licensed groups (products added or removed, disabled plans changed, dynamic rule
changed, licensing gained or lost) and of products (new service plans, which Microsoft enables
by default in every group assigning the product; prepaid seats), plus every user's gains and
losses. `license-guard whatif` compares a tenant with itself after planned changes and reports
the same per-user gains and losses. Both run the data-loss guard on the result.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.core.alerting import granting_licenses
from shared.core.dataloss import (
    CapabilityLoss,
    CapabilityPlans,
    capability_losses,
    data_loss_finding,
    evaluation_losses,
)
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation
from shared.core.findings import Finding, Names
from shared.core.model import Group, LicenseAssignment, PrepaidUnits, Tenant, seat_shortfall

GAINED = "gained"
LOST = "lost"
CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"


# --------------------------------------------------------------------------- users' licenses


@dataclass(frozen=True, slots=True)
class SkuDelta:
    """How one user's effective license of one SKU changed.

    `plans_enabled`: plans enabled after and not before; `plans_disabled`: enabled before and
    not after (for a lost SKU, every plan the user had). Paths: group ids, None = direct.
    """

    sku_id: str
    status: str
    plans_enabled: frozenset[str]
    plans_disabled: frozenset[str]
    paths_before: tuple[str | None, ...]
    paths_after: tuple[str | None, ...]
    enabled_before: int
    enabled_after: int


@dataclass(frozen=True, slots=True)
class UserDelta:
    user_id: str
    skus: tuple[SkuDelta, ...]
    losses: tuple[CapabilityLoss, ...] = ()
    finding: Finding | None = None
    """The DataLossRisk finding when `losses` is not empty."""


def license_deltas(
    before: Sequence[EffectiveLicense], after: Sequence[EffectiveLicense]
) -> tuple[SkuDelta, ...]:
    """Per SKU, what one user gained or lost; SKUs with unchanged plans and paths are left out."""
    old = {lic.sku_id: lic for lic in before}
    new = {lic.sku_id: lic for lic in after}
    deltas = []
    for sku_id in [*old, *(s for s in new if s not in old)]:
        was, now = old.get(sku_id), new.get(sku_id)
        was_plans = was.enabled_plans if was else frozenset()
        now_plans = now.enabled_plans if now else frozenset()
        was_paths = tuple(p.group_id for p in was.paths) if was else ()
        now_paths = tuple(p.group_id for p in now.paths) if now else ()
        if Counter(was_paths) == Counter(now_paths):
            now_paths = was_paths  # the same paths listed in another order (Graph's order)
        if was_plans == now_plans and was_paths == now_paths:
            continue
        status = GAINED if was is None else LOST if now is None else CHANGED
        deltas.append(
            SkuDelta(
                sku_id,
                status,
                now_plans - was_plans,
                was_plans - now_plans,
                was_paths,
                now_paths,
                len(was_plans),
                len(now_plans),
            )
        )
    return tuple(deltas)


def user_deltas(
    before: Evaluation,
    after: Evaluation,
    capabilities: CapabilityPlans,
    names: Names,
    labels: Mapping[str, str] | None = None,
    losses: Mapping[str, tuple[CapabilityLoss, ...]] | None = None,
) -> tuple[UserDelta, ...]:
    """Every user whose effective licenses changed, with the capabilities they would lose.

    `names` describes the tenant before (it names what granted a lost capability). Users only
    on one side are compared with "no licenses" on the other, but the data-loss guard skips
    them: a deleted user is a deletion, not a license removal. `losses`, when given, replaces
    the guard's comparison of `before` with `after` (the what-if's, which knows which new
    paths would fail).
    """
    old = {r.user.id: r for r in before.users}
    new = {r.user.id: r for r in after.users}
    if losses is None:
        losses = evaluation_losses(before, after, capabilities)
    deltas = []
    for user_id in [*old, *(u for u in new if u not in old)]:
        was, now = old.get(user_id), new.get(user_id)
        skus = license_deltas(was.licenses if was else (), now.licenses if now else ())
        lost = losses.get(user_id, ())
        if not skus and not lost:
            continue
        user = (was or now).user  # type: ignore[union-attr]
        finding = data_loss_finding(user, lost, names, labels) if lost else None
        deltas.append(UserDelta(user_id, skus, lost, finding))
    return tuple(deltas)


@dataclass(frozen=True, slots=True)
class SeatDelta:
    """Seat demand for one SKU before and after; `shortfall` is after the change."""

    sku_id: str
    demand_before: int
    demand_after: int
    prepaid_enabled: int
    failing: int = 0
    """Users a predicted error other than CountViolation fails (what-if): not in
    `demand_after`, as they would take no seat."""

    @property
    def shortfall(self) -> int:
        return seat_shortfall(self.demand_after, self.prepaid_enabled)

    @property
    def change(self) -> int:
        return self.demand_after - self.demand_before


def seat_deltas(
    before: Evaluation, after: Evaluation, failing: Mapping[str, int] | None = None
) -> tuple[SeatDelta, ...]:
    """SKUs whose demand changed, that are short of seats after, or whose new holders a
    predicted error fails (`failing`: per SKU, users counted in `after` who would take no
    seat), in the tenant's order."""
    old = {s.sku.id: s.demand for s in before.skus}
    failing = failing or {}
    deltas = []
    for report in after.skus:
        left_out = min(failing.get(report.sku.id, 0), report.demand)
        delta = SeatDelta(
            report.sku.id,
            old.get(report.sku.id, 0),
            report.demand - left_out,
            report.sku.prepaid.enabled,
            left_out,
        )
        if delta.change or delta.shortfall or delta.failing:
            deltas.append(delta)
    return tuple(deltas)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class PlanChange:
    """A group's disabled plans for one SKU changed: plans now disabled, plans now enabled."""

    sku_id: str
    newly_disabled: frozenset[str]
    newly_enabled: frozenset[str]


@dataclass(frozen=True, slots=True)
class GroupDrift:
    """A licensed group (in either snapshot) whose licensing configuration changed."""

    group_id: str
    name: str
    status: str
    """'gained' (licensing), 'lost' (licensing), 'added'/'removed' (the group), or 'changed'."""
    skus_added: tuple[str, ...] = ()
    skus_removed: tuple[str, ...] = ()
    plan_changes: tuple[PlanChange, ...] = ()
    rule_before: str | None = None
    rule_after: str | None = None
    members_added: tuple[str, ...] = ()
    members_removed: tuple[str, ...] = ()

    @property
    def rule_changed(self) -> bool:
        return self.rule_before != self.rule_after


@dataclass(frozen=True, slots=True)
class NewPlan:
    """A service plan that appeared in a SKU, and the groups it reaches (enabled by default)."""

    plan_id: str
    group_ids: tuple[str, ...]
    users: int
    """Direct user members of those groups: who get the plan through a group."""


@dataclass(frozen=True, slots=True)
class SkuDrift:
    sku_id: str
    status: str
    """'added', 'removed' or 'changed'."""
    new_plans: tuple[NewPlan, ...] = ()
    removed_plans: tuple[str, ...] = ()
    prepaid_before: PrepaidUnits | None = None
    prepaid_after: PrepaidUnits | None = None

    @property
    def prepaid_changed(self) -> bool:
        return self.prepaid_before != self.prepaid_after


def group_drift(old: Tenant, new: Tenant) -> tuple[GroupDrift, ...]:
    """Licensing configuration changes of groups licensed in either tenant."""
    drifts = []
    ids = [*old.groups, *(g for g in new.groups if g not in old.groups)]
    for group_id in ids:
        was, now = old.groups.get(group_id), new.groups.get(group_id)
        if not ((was and was.licenses) or (now and now.licenses)):
            continue
        drift = _group_drift(group_id, was, now)
        if drift is not None:
            drifts.append(drift)
    return tuple(drifts)


def _group_drift(group_id: str, was: Group | None, now: Group | None) -> GroupDrift | None:
    old_lic = {lic.sku_id: lic for lic in (was.licenses if was else ())}
    new_lic = {lic.sku_id: lic for lic in (now.licenses if now else ())}
    plan_changes = tuple(
        _plan_change(old_lic[s], new_lic[s])
        for s in old_lic
        if s in new_lic and old_lic[s].disabled_plans != new_lic[s].disabled_plans
    )
    old_members = was.member_user_ids if was else ()
    new_members = now.member_user_ids if now else ()
    old_set, new_set = set(old_members), set(new_members)
    drift = GroupDrift(
        group_id=group_id,
        name=(now or was).name,  # type: ignore[union-attr]
        status=(
            ADDED
            if was is None
            else REMOVED
            if now is None
            else GAINED
            if not old_lic
            else LOST
            if not new_lic
            else CHANGED
        ),
        skus_added=tuple(s for s in new_lic if s not in old_lic),
        skus_removed=tuple(s for s in old_lic if s not in new_lic),
        plan_changes=plan_changes,
        rule_before=was.membership_rule if was else None,
        rule_after=now.membership_rule if now else None,
        members_added=tuple(u for u in new_members if u not in old_set),
        members_removed=tuple(u for u in old_members if u not in new_set),
    )
    unchanged = (
        drift.status == CHANGED
        and not (drift.skus_added or drift.skus_removed or plan_changes)
        and not drift.rule_changed
        and not (drift.members_added or drift.members_removed)
    )
    return None if unchanged else drift


def _plan_change(was: LicenseAssignment, now: LicenseAssignment) -> PlanChange:
    return PlanChange(
        was.sku_id,
        now.disabled_plans - was.disabled_plans,
        was.disabled_plans - now.disabled_plans,
    )


def sku_drift(old: Tenant, new: Tenant) -> tuple[SkuDrift, ...]:
    """Products added or removed, service plans that appeared or went, prepaid seat changes."""
    drifts = []
    for sku_id in [*old.skus, *(s for s in new.skus if s not in old.skus)]:
        was, now = old.skus.get(sku_id), new.skus.get(sku_id)
        if was is None or now is None:
            drifts.append(
                SkuDrift(
                    sku_id,
                    ADDED if was is None else REMOVED,
                    prepaid_before=was.prepaid if was else None,
                    prepaid_after=now.prepaid if now else None,
                )
            )
            continue
        appeared = [p.id for p in now.plans if p.id not in was.plan_ids]
        gone = tuple(p.id for p in was.plans if p.id not in now.plan_ids)
        if appeared or gone or was.prepaid != now.prepaid:
            drifts.append(
                SkuDrift(
                    sku_id,
                    CHANGED,
                    new_plans=_reach(new, sku_id, appeared),
                    removed_plans=gone,
                    prepaid_before=was.prepaid,
                    prepaid_after=now.prepaid,
                )
            )
    return tuple(drifts)


def _reach(tenant: Tenant, sku_id: str, plan_ids: Sequence[str]) -> tuple[NewPlan, ...]:
    """For each new plan: the groups assigning the SKU that do not disable it."""
    found = []
    for plan_id in plan_ids:
        groups = [
            g
            for g in tenant.groups.values()
            for lic in g.licenses
            if lic.sku_id == sku_id and plan_id not in lic.disabled_plans
        ]
        users = len({u for g in groups for u in g.member_user_ids})
        found.append(NewPlan(plan_id, tuple(g.id for g in groups), users))
    return tuple(found)


# --------------------------------------------------------------------------- the whole diff


@dataclass(frozen=True, slots=True)
class Drift:
    groups: tuple[GroupDrift, ...]
    skus: tuple[SkuDrift, ...]
    users: tuple[UserDelta, ...]
    seats: tuple[SeatDelta, ...]

    @property
    def losses(self) -> tuple[CapabilityLoss, ...]:
        return tuple(loss for u in self.users for loss in u.losses)


def diff_tenants(
    old: Tenant,
    new: Tenant,
    before: Evaluation,
    after: Evaluation,
    capabilities: CapabilityPlans,
    names: Names,
    labels: Mapping[str, str] | None = None,
) -> Drift:
    """The full drift between two evaluated tenants; `names` describes the old tenant.

    The snapshots say what Entra did: a group path Graph shows in state Error granted nothing
    (a move to a group without a free seat leaves the user without its products)."""
    losses = capability_losses(
        {r.user.id: granting_licenses(r.user, r.licenses) for r in before.users},
        {r.user.id: granting_licenses(r.user, r.licenses) for r in after.users},
        capabilities,
    )
    return Drift(
        groups=group_drift(old, new),
        skus=sku_drift(old, new),
        users=user_deltas(before, after, capabilities, names, labels, losses),
        seats=seat_deltas(before, after),
    )
