"""What if: apply planned membership and plan changes to a tenant, and see who gains and loses.

The changes are pure functions from a `Tenant` to a new `Tenant`: add a user to a group,
remove them, set the disabled plans of a SKU in a group (which assigns the SKU to the group if
it did not yet), add a SKU to a group or remove one, or delete a group. Graph's side (each
user's licenseAssignmentStates) is left as it was: effective licenses are recomputed from
memberships, which is what Entra will do after the change; `shared.core.predict` then says
which errors Entra would likely record doing it.

What an admin types is resolved to objects by `shared.core.references`.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from shared.core.alerting import FAILED_STATE, HOLDING_STATES, granting_licenses
from shared.core.dataloss import CapabilityPlans, capability_losses
from shared.core.drift import SeatDelta, UserDelta, seat_deltas, user_deltas
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation, evaluate
from shared.core.findings import COUNT_VIOLATION, ERROR, MUTUALLY_EXCLUSIVE, Names, membership_fix
from shared.core.model import Group, LicenseAssignment, Tenant, normalize_error
from shared.core.plan_conflicts import PlanConflict
from shared.core.predict import Predictions, predict_errors
from shared.core.predict_seats import free_seats
from shared.core.references import BadReference

DELETE_LICENSED_GROUP_DOC = (
    "https://learn.microsoft.com/en-us/entra/identity/users/licensing-groups-resolve-problems"
    "#when-a-licensed-group-is-deleted"
)


@dataclass(frozen=True, slots=True)
class AddMember:
    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class RemoveMember:
    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SetDisabledPlans:
    group_id: str
    sku_id: str
    disabled_plans: frozenset[str]


@dataclass(frozen=True, slots=True)
class AddSku:
    """Assign SKU to the group with these plans disabled (a no-op if it already assigns it)."""

    group_id: str
    sku_id: str
    disabled_plans: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RemoveSku:
    group_id: str
    sku_id: str


@dataclass(frozen=True, slots=True)
class DeleteGroup:
    group_id: str


Change = AddMember | RemoveMember | SetDisabledPlans | AddSku | RemoveSku | DeleteGroup


# --------------------------------------------------------------------------- applying changes


def apply_change(tenant: Tenant, change: Change) -> Tenant:
    """The tenant after one change. Adding a member twice, or removing a non-member, is a no-op."""
    group = tenant.groups.get(change.group_id)
    if group is None:
        raise BadReference(f"group {change.group_id} is not in the snapshot")
    if isinstance(change, DeleteGroup):
        groups = {
            g.id: replace(g, member_group_ids=tuple(x for x in g.member_group_ids if x != group.id))
            for g in tenant.groups.values()
            if g.id != group.id
        }
        return replace(tenant, groups=groups)
    if isinstance(change, AddMember | RemoveMember) and change.user_id not in tenant.users:
        raise BadReference(f"user {change.user_id} is not in the snapshot")
    if isinstance(change, AddMember):
        if change.user_id in group.member_user_ids:
            return tenant
        group = replace(group, member_user_ids=(*group.member_user_ids, change.user_id))
    elif isinstance(change, RemoveMember):
        if change.user_id not in group.member_user_ids:
            return tenant
        members = tuple(u for u in group.member_user_ids if u != change.user_id)
        group = replace(group, member_user_ids=members)
    elif isinstance(change, RemoveSku):
        licenses = tuple(lic for lic in group.licenses if lic.sku_id != change.sku_id)
        group = replace(group, licenses=licenses)
    else:
        _check_plans(tenant, change.sku_id, change.disabled_plans)
        wanted = LicenseAssignment(change.sku_id, change.disabled_plans)
        if any(lic.sku_id == change.sku_id for lic in group.licenses):
            if isinstance(change, AddSku):
                return tenant
            licenses = tuple(
                wanted if lic.sku_id == change.sku_id else lic for lic in group.licenses
            )
        else:
            licenses = (*group.licenses, wanted)
        group = replace(group, licenses=licenses)
    return replace(tenant, groups={**tenant.groups, group.id: group})


def _check_plans(tenant: Tenant, sku_id: str, disabled: frozenset[str]) -> None:
    sku = tenant.skus.get(sku_id)
    if sku is None:
        raise BadReference(f"SKU {sku_id} is not in the snapshot")
    unknown = sorted(disabled - sku.plan_ids)
    if unknown:
        raise BadReference(f"service plan {unknown[0]} is not in {sku.part_number}")


def apply_changes(tenant: Tenant, changes: Iterable[Change]) -> Tenant:
    deleted: dict[str, str] = {}  # group id -> name, of the groups earlier changes delete
    for change in changes:
        if change.group_id in deleted:
            raise BadReference(
                f"group '{deleted[change.group_id]}' is deleted by an earlier change "
                "(--delete-group): no later change can use it"
            )
        if isinstance(change, DeleteGroup) and change.group_id in tenant.groups:
            deleted[change.group_id] = tenant.groups[change.group_id].name
        tenant = apply_change(tenant, change)
    return tenant


def change_notes(tenant: Tenant, changes: Sequence[Change], names: Names) -> tuple[str, ...]:
    """What an admin should know about the changes themselves: no-ops, and where to make them."""
    notes: list[str] = []
    current = tenant
    for change in changes:
        group = current.groups[change.group_id]
        label = names.group(group.id)
        if isinstance(change, AddMember | RemoveMember):
            notes += _member_notes(current, change, group, names)
        elif isinstance(change, DeleteGroup):
            # a synced group is deleted where it lives; Entra Connect deletes it in the cloud
            where = (
                " in on-premises Active Directory and let Entra Connect sync"
                if group.synced_from_on_premises
                else ""
            )
            if group.licenses:
                notes.append(
                    f"Entra does not delete a group that still assigns licenses: remove the "
                    f"{len(group.licenses)} product(s) of {label} first (its members lose them "
                    f"as shown below), then delete it{where} ({DELETE_LICENSED_GROUP_DOC})."
                )
            elif where:
                notes.append(f"{label} is synced from on-premises: delete it{where}.")
        elif isinstance(change, RemoveSku):
            if all(lic.sku_id != change.sku_id for lic in group.licenses):
                notes.append(f"{label} does not assign {names.product(change.sku_id)}: no change.")
        else:
            notes += _plan_notes(current, change, group, names)
        current = apply_change(current, change)
    return tuple(dict.fromkeys(notes))


def _member_notes(
    tenant: Tenant, change: AddMember | RemoveMember, group: Group, names: Names
) -> list[str]:
    label = names.group(group.id)
    user = tenant.users[change.user_id]
    member = change.user_id in group.member_user_ids
    if isinstance(change, AddMember) and member:
        return [f"{user.display_name} is already a member of {label}: no change."]
    if isinstance(change, RemoveMember) and not member:
        return [f"{user.display_name} is not a direct member of {label}: no change."]
    if group.membership_rule or group.synced_from_on_premises:
        return [f"To make this change: {membership_fix(group, names, group.id)}."]
    return []


def _plan_notes(
    tenant: Tenant, change: SetDisabledPlans | AddSku, group: Group, names: Names
) -> list[str]:
    label = names.group(group.id)
    sku = tenant.skus[change.sku_id]
    lic = next((x for x in group.licenses if x.sku_id == sku.id), None)
    if lic is None:
        return [
            f"{label} does not assign {names.product(sku.id)} yet: the change assigns it "
            f"to all {len(group.member_user_ids)} direct user members."
        ]
    if isinstance(change, AddSku):
        return [
            f"{label} already assigns {names.product(sku.id)}: no change (use "
            "--set-disabled-plans to change its plans)."
        ]
    if lic.disabled_plans == change.disabled_plans:
        return [
            f"{label} already disables exactly these plans of {names.product(sku.id)}: no change."
        ]
    return []


# --------------------------------------------------------------------------- the what-if


_NO_PREDICTIONS = Predictions((), ())


@dataclass(frozen=True, slots=True)
class WhatIf:
    changes: tuple[Change, ...]
    tenant_after: Tenant
    before: Evaluation
    after: Evaluation
    users: tuple[UserDelta, ...]
    seats: tuple[SeatDelta, ...]
    notes: tuple[str, ...]
    predictions: Predictions = _NO_PREDICTIONS
    data_plans: frozenset[str] = frozenset()
    """Service plan ids (lower case) that hold data: a lost one is flagged."""

    @property
    def data_loss(self) -> bool:
        return any(u.losses for u in self.users)

    @property
    def predicted_errors(self) -> bool:
        """Entra would record an error for some user (a certainty, not a possibility)."""
        return any(e.severity == "error" for e in self.predictions.errors)


def what_if(
    tenant: Tenant,
    changes: Sequence[Change],
    capabilities: CapabilityPlans,
    product_names: Mapping[str, str] | None = None,
    plan_names: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    conflicts: Sequence[PlanConflict] = (),
) -> WhatIf:
    """Evaluate the tenant before and after the changes; report each affected user and SKU,
    and the errors Entra would likely record (`conflicts`: the table of conflicting plans)."""
    names = Names(tenant, product_names, plan_names)
    after_tenant = apply_changes(tenant, changes)
    before = evaluate(tenant, product_names, plan_names, conflicts)
    after = evaluate(after_tenant, product_names, plan_names, conflicts)
    predictions = predict_errors(
        tenant, before, after, conflicts, Names(after_tenant, product_names, plan_names)
    )
    # seats left for a conflict the change clears, once the users it adds have theirs
    free = free_seats(tenant, before, after) | {
        n.sku_id: n.free - n.needed for n in predictions.seats
    }
    losses = capability_losses(
        {r.user.id: granting_licenses(r.user, r.licenses) for r in before.users},
        _without_failing_joins(before, after, predictions, _retried_conflicts(before, after, free)),
        capabilities,
    )
    return WhatIf(
        changes=tuple(changes),
        tenant_after=after_tenant,
        before=before,
        after=after,
        users=user_deltas(before, after, capabilities, names, labels, losses),
        seats=seat_deltas(before, after, predictions.failing),
        notes=change_notes(tenant, changes, names),
        predictions=predictions,
        data_plans=frozenset().union(*capabilities.values()),
    )


def _retried_conflicts(
    before: Evaluation, after: Evaluation, free: Mapping[str, int]
) -> dict[str, frozenset[tuple[str, str | None]]]:
    """Per user, the (SKU, group) paths Graph shows failing in MutuallyExclusiveViolation that
    Entra assigns after the change: the user no longer holds a product they held (the
    documented swap between groups: the target applies once the user leaves the source group),
    and a seat is free for a product the user holds through no working path."""
    old = {r.user.id: {lic.sku_id for lic in r.licenses} for r in before.users}
    seats = dict(free)
    retried = {}
    for report in after.users:
        user = report.user
        if not old.get(user.id, set()) - {lic.sku_id for lic in report.licenses}:
            continue
        wanted = {(lic.sku_id, p.group_id) for lic in report.licenses for p in lic.paths}
        held = {s.sku_id for s in user.states if s.state in HOLDING_STATES}
        paths = set()
        for s in user.states:
            path = (s.sku_id, s.assigned_by_group)
            if s.state != FAILED_STATE or normalize_error(s.error) != MUTUALLY_EXCLUSIVE:
                continue
            if path not in wanted or (s.sku_id not in held and seats.get(s.sku_id, 0) <= 0):
                continue
            if s.sku_id not in held:
                seats[s.sku_id] -= 1  # one seat per product, whatever the paths
                held.add(s.sku_id)
            paths.add(path)
        if paths:
            retried[user.id] = frozenset(paths)
    return retried


def _without_failing_joins(
    before: Evaluation,
    after: Evaluation,
    predictions: Predictions,
    retried: Mapping[str, frozenset[tuple[str, str | None]]],
) -> dict[str, tuple[EffectiveLicense, ...]]:
    """Each user's licenses after the change, without the paths Entra would fail to assign (a
    predicted error): a group the user newly joins assigns none of its products (all-or-none),
    and a product a group newly assigns to its member is not assigned (the group's other
    products stay); nor a path Graph shows in state Error (it grants nothing now, and the
    change does not make Entra retry it), unless `retried` names it (a conflict the change
    clears). What the data-loss guard judges the change on."""
    failing: dict[str, set[tuple[str, str]]] = {}
    seatless: dict[str, set[str]] = {}  # no seat: no path assigns the product (one seat each)
    for error in predictions.errors:
        if error.severity == ERROR and error.group_id is not None:
            failing.setdefault(error.user_id, set()).add((error.group_id, error.sku_id))
        if error.severity == ERROR and error.code == COUNT_VIOLATION:
            seatless.setdefault(error.user_id, set()).add(error.sku_id)
    old = {r.user.id: r.licenses for r in before.users}
    licenses = {}
    for report in after.users:
        user_id = report.user.id
        had = {(p.group_id, lic.sku_id) for lic in old.get(user_id, ()) for p in lic.paths}
        short = seatless.get(user_id, set())
        unseated = {
            (p.group_id, lic.sku_id)
            for lic in report.licenses
            if lic.sku_id in short
            for p in lic.group_paths
            if p.group_id is not None
        }
        new = (failing.get(user_id, set()) | unseated) - had
        joined = {group_id for group_id, _ in new} - {group_id for group_id, _ in had}
        kept = tuple(_without_paths(report.licenses, joined, new)) if new else report.licenses
        user, cleared = report.user, retried.get(user_id, frozenset())
        if cleared:
            states = (s for s in user.states if (s.sku_id, s.assigned_by_group) not in cleared)
            user = replace(user, states=tuple(states))
        licenses[user_id] = granting_licenses(user, kept)
    return licenses


def _without_paths(
    licenses: Iterable[EffectiveLicense], group_ids: set[str], paths: set[tuple[str, str]]
) -> Iterator[EffectiveLicense]:
    """The licenses without any path from `group_ids`, nor the (group, SKU) `paths`."""
    for lic in licenses:
        kept = tuple(
            p
            for p in lic.paths
            if p.group_id not in group_ids and (p.group_id, lic.sku_id) not in paths
        )
        if kept:
            enabled = frozenset().union(*(p.enabled_plans for p in kept))
            plans = lic.enabled_plans | lic.disabled_plans
            yield EffectiveLicense(lic.sku_id, kept, enabled, plans - enabled)
