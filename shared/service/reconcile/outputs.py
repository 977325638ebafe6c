"""What the nightly reconciliation writes besides the ledger: the configuration snapshot and its
drift, the self-check against Entra's own signals, and the direct -> group migration plan.

The scan evaluates users a page at a time, so each output is built in two steps: a small part
per page (kept in blob storage with the run, so a resumed run does not lose them) and one
assembly at the end. Everything here is plain data in, plain data out; the I/O is the caller's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.adapters.snapshot import GraphTranslator
from shared.adapters.world_document import config_tenant
from shared.core.drift import CHANGED, GroupDrift, group_drift, sku_drift
from shared.core.evaluate import Evaluation
from shared.core.findings import REPORTED_CODES
from shared.core.graph_values import graph_time_or_none
from shared.core.migration import (
    CoveredDirect,
    MigrationPlan,
    PartlyCoveredDirect,
    direct_only_sets,
    migration_plan,
)
from shared.core.model import Tenant
from shared.core.nightly_summary import DriftItem
from shared.ports.audit_entries import AuditEntry
from shared.ports.directory import JSON
from shared.ports.licensed_world import LicensedWorld

SET_GROUP_LICENSE = "Set group license"
UPDATE_GROUP = "Update group"
AUDIT_ACTIVITIES = (SET_GROUP_LICENSE, UPDATE_GROUP)
"""Directory audit activities that change a licensed group's configuration."""

# DriftItem kinds (the summary's contract, see shared.core.nightly_summary.DriftItem)
GROUP_LICENSES_CHANGED = "group-licenses-changed"
GROUP_GAINED_SKU = "group-gained-sku"
GROUP_LOST_SKU = "group-lost-sku"
DYNAMIC_RULE_CHANGED = "dynamic-rule-changed"
NEW_SERVICE_PLAN = "new-service-plan"
PREPAID_UNITS_CHANGED = "prepaid-units-changed"

_UNDATED = datetime.min.replace(tzinfo=UTC)
"""An audit entry without a readable `activityDateTime` is older than any dated one."""


# --------------------------------------------------------------------------- configuration


def _actors(audits: Iterable[AuditEntry], activity: str | None = None) -> dict[str, str]:
    """The latest actor per target group id (of `activity` only, when given). Latest as an
    instant: Graph writes as many fraction digits as it has (`...:05Z`, `...:05.25Z`), so
    their text does not sort in time ('.' before 'Z')."""
    latest: dict[str, tuple[datetime, str]] = {}
    for entry in audits:
        who, when = entry.actor, graph_time_or_none(entry.when) or _UNDATED
        if not who or activity not in (None, entry.activity):
            continue
        for target_id in entry.target_ids:
            if target_id and (target_id not in latest or latest[target_id][0] <= when):
                latest[target_id] = (when, who)
    return {target: who for target, (_, who) in latest.items()}


def config_drift(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    members: Mapping[str, Sequence[str]],
    audits: Iterable[AuditEntry] = (),
) -> list[DriftItem]:
    """Last night's configuration against tonight's, one item per change, with the actor from
    the audit log when one is found. A new service plan is one item per SKU, listing the
    licensed groups it reaches (Microsoft enables new plans by default)."""
    before, after = config_tenant(old), config_tenant(new)
    reach = config_tenant(new, members)
    # The audit query runs at the finish, but tonight's configuration is as the run read it:
    # a later entry is a change tomorrow's drift reports, not who made tonight's.
    until = graph_time_or_none(new.get("takenAt"))
    audits = tuple(
        a for a in audits if until is None or (graph_time_or_none(a.when) or _UNDATED) <= until
    )
    actors = _actors(audits)
    # a license change is made by whoever set the group's license, not whoever edited the
    # group last (its description, or the sync of a synced group)
    licensers = _actors(audits, SET_GROUP_LICENSE)
    updaters = _actors(audits, UPDATE_GROUP)  # a membership rule is set by updating the group
    items: list[DriftItem] = []

    def part(sku_id: str) -> str:
        sku = after.skus.get(sku_id) or before.skus.get(sku_id)
        return sku.part_number if sku else sku_id

    def plans(sku_id: str, plan_ids: Iterable[str]) -> str:
        sku = after.skus.get(sku_id) or before.skus.get(sku_id)
        return ", ".join(sorted(sku.plan_name(p) if sku else p for p in plan_ids))

    for drift in group_drift(before, after):
        who = actors.get(drift.group_id)
        licenser = licensers.get(drift.group_id, who)
        for sku_id in drift.skus_added:
            items.append(
                DriftItem(GROUP_GAINED_SKU, drift.name, f"now assigns {part(sku_id)}", licenser)
            )
        for sku_id in drift.skus_removed:
            items.append(
                DriftItem(GROUP_LOST_SKU, drift.name, f"no longer assigns {part(sku_id)}", licenser)
            )
        for change in drift.plan_changes:
            text = [f"{part(change.sku_id)}:"]
            if change.newly_disabled:
                text.append(f"disabled {plans(change.sku_id, change.newly_disabled)}")
            if change.newly_enabled:
                text.append(f"enabled {plans(change.sku_id, change.newly_enabled)}")
            items.append(DriftItem(GROUP_LICENSES_CHANGED, drift.name, " ".join(text), licenser))
        if drift.rule_changed and drift.status == CHANGED:  # a group licensed both nights
            updater = updaters.get(drift.group_id, who)
            items.append(DriftItem(DYNAMIC_RULE_CHANGED, drift.name, _rule_change(drift), updater))
    for sku in sku_drift(before, reach):
        if sku.new_plans:
            groups = sorted(
                {reach.groups[g].name for plan in sku.new_plans for g in plan.group_ids}
            )
            users = max((p.users for p in sku.new_plans), default=0)
            names = plans(sku.sku_id, (p.plan_id for p in sku.new_plans))
            reached = ", ".join(groups) if groups else "no licensed group"
            items.append(
                DriftItem(
                    NEW_SERVICE_PLAN,
                    part(sku.sku_id),
                    f"new service plan(s) {names}, enabled by default; reaches {reached} "
                    f"({users} user(s))",
                )
            )
        if sku.status == "changed" and sku.prepaid_changed:
            was, now = sku.prepaid_before, sku.prepaid_after
            items.append(
                DriftItem(
                    PREPAID_UNITS_CHANGED,
                    part(sku.sku_id),
                    f"prepaid units enabled {was.enabled if was else 0} -> "
                    f"{now.enabled if now else 0}, warning {was.warning if was else 0} -> "
                    f"{now.warning if now else 0}, suspended {was.suspended if was else 0} -> "
                    f"{now.suspended if now else 0}, locked out {was.locked_out if was else 0} "
                    f"-> {now.locked_out if now else 0}",
                )
            )
    return items


def _rule_change(drift: GroupDrift) -> str:
    """A rule edited, or the membership turned dynamic or assigned (members replaced)."""
    if drift.rule_before is None:
        return f"membership turned dynamic: rule '{drift.rule_after}' replaces its members"
    if drift.rule_after is None:
        return f"membership turned assigned: rule '{drift.rule_before}' removed"
    return f"membership rule changed from '{drift.rule_before}' to '{drift.rule_after}'"


def drift_json(items: Sequence[DriftItem], old_taken_at: str | None, new_taken_at: str) -> JSON:
    return {
        "from": old_taken_at,
        "to": new_taken_at,
        "changes": [
            {"kind": i.kind, "subject": i.subject, "detail": i.detail, "actor": i.actor}
            for i in items
        ],
    }


# --------------------------------------------------------------------------- self-check


@dataclass
class PageChecks:
    """One page's part of the self-check and the migration plan (JSON-ready)."""

    errors_by_group: dict[str, list[str]] = field(default_factory=dict)
    """The core's verdict: users with a Graph-reported error from each group."""
    state_mismatches: list[JSON] = field(default_factory=list)
    """licenseAssignmentStates vs assignedLicenses disagreements."""
    migration: JSON = field(default_factory=dict)

    def to_json(self) -> JSON:
        return {
            "errorsByGroup": self.errors_by_group,
            "stateMismatches": self.state_mismatches,
            "migration": self.migration,
        }


def page_checks(evaluation: Evaluation, tenant: Tenant) -> PageChecks:
    checks = PageChecks()
    errors: dict[str, set[str]] = defaultdict(set)
    # Entra's signals list current members only: an error on a path from a group the user
    # has left (Entra refusing the removal) is the core's finding, not a disagreement.
    members = {g.id: set(g.member_user_ids) for g in tenant.groups.values()}
    for report in evaluation.users:
        for finding in report.findings:
            group_id, user_id = finding.group_id, finding.user_id
            if finding.code not in REPORTED_CODES or not group_id or not user_id:
                continue
            if user_id in members.get(group_id, ()):
                errors[group_id].add(user_id)
        checks.state_mismatches.extend(_state_mismatches(report.user))
    checks.errors_by_group = {g: sorted(users) for g, users in errors.items()}
    licenses = {r.user.id: r.licenses for r in evaluation.users}
    checks.migration = _migration_part(migration_plan(tenant, licenses), tenant)
    return checks


def _state_mismatches(user: Any) -> list[JSON]:
    """A SKU Entra says the user holds (a state not in Error) must be in assignedLicenses, and
    every assignedLicense must have a state; disabled plans must match where both exist."""
    held: dict[str, list[Any]] = defaultdict(list)
    for state in user.states:
        if state.state != "Error":
            held[state.sku_id].append(state)
    assigned = {a.sku_id: a for a in user.assigned_licenses}
    out = []
    for sku_id in sorted(held.keys() - assigned.keys()):
        out.append(_mismatch(user, sku_id, "state without assignedLicense"))
    for sku_id in sorted(assigned.keys() - held.keys()):
        out.append(_mismatch(user, sku_id, "assignedLicense without an active state"))
    for sku_id in sorted(held.keys() & assigned.keys()):
        # Entra disables a plan only when every path disables it.
        disabled = frozenset.intersection(*(s.disabled_plans for s in held[sku_id]))
        if disabled != assigned[sku_id].disabled_plans:
            out.append(_mismatch(user, sku_id, "disabled plans differ"))
    return out


def _mismatch(user: Any, sku_id: str, problem: str) -> JSON:
    return {
        "userId": user.id,
        "userPrincipalName": user.user_principal_name,
        "skuId": sku_id,
        "problem": problem,
    }


@dataclass(frozen=True, slots=True)
class SelfCheck:
    agreement: float
    disagreements: list[JSON]
    state_mismatches: list[JSON]
    groups_checked: int

    def to_json(self) -> JSON:
        return {
            "agreement": self.agreement,
            "groupsChecked": self.groups_checked,
            "verdictDisagreements": self.disagreements,
            "stateMismatches": self.state_mismatches,
        }


def self_check(
    users_scanned: int,
    core_errors: Mapping[str, set[str]],
    entra_groups: set[str],
    entra_members: Mapping[str, set[str]],
    state_mismatches: list[JSON],
) -> SelfCheck:
    """Compare the core's error verdicts with Entra's (`hasMembersWithLicenseErrors`,
    `membersWithLicenseErrors`), per group and per user."""
    disagreements: list[JSON] = []
    users_off: set[str] = set()
    for group_id in sorted(core_errors.keys() | entra_groups | entra_members.keys()):
        ours = core_errors.get(group_id, set())
        theirs = entra_members.get(group_id, set())
        if bool(ours) != (group_id in entra_groups):
            disagreements.append(
                {
                    "groupId": group_id,
                    "problem": "hasMembersWithLicenseErrors is "
                    f"{str(group_id in entra_groups).lower()}, the core finds {len(ours)} user(s) "
                    "in error",
                }
            )
        for user_id in sorted(ours ^ theirs):
            users_off.add(user_id)
            disagreements.append(
                {
                    "groupId": group_id,
                    "userId": user_id,
                    "problem": "in membersWithLicenseErrors only"
                    if user_id in theirs
                    else "in error per the core only",
                }
            )
    users_off |= {m["userId"] for m in state_mismatches}
    agreement = 1.0 if not users_scanned else max(0.0, 1 - len(users_off) / users_scanned)
    return SelfCheck(round(agreement, 6), disagreements, state_mismatches, len(entra_groups))


# --------------------------------------------------------------------------- migration


def _user_json(tenant: Tenant, user_id: str) -> JSON:
    user = tenant.users[user_id]
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
    }


def _migration_part(plan: MigrationPlan, tenant: Tenant) -> JSON:
    return {
        "covered": [
            [c.user_id, c.sku_id, list(c.group_ids), list(c.unhealthy_group_ids)]
            for c in plan.covered
        ],
        "partly": [
            [p.user_id, p.sku_id, list(p.group_ids), sorted(p.plans)] for p in plan.partly_covered
        ],
        "directOnly": [
            [s.sku_id, sorted(s.disabled_plans), list(s.user_ids)] for s in plan.direct_only
        ],
        "users": [
            _user_json(tenant, u)
            for u in sorted(
                {c.user_id for c in plan.covered}
                | {p.user_id for p in plan.partly_covered}
                | {u for s in plan.direct_only for u in s.user_ids}
            )
        ],
    }


def assemble_migration(parts: Iterable[JSON], world: LicensedWorld) -> tuple[MigrationPlan, Tenant]:
    """One plan from the pages' parts, and a tenant (the world's SKUs and groups, the users
    it names)
    to render it with `shared.render.migration.migration_json` / `migration_rows`."""
    covered: list[CoveredDirect] = []
    partly: list[PartlyCoveredDirect] = []
    only: dict[tuple[str, frozenset[str]], list[str]] = {}
    users: dict[str, JSON] = {}
    for part in parts:
        covered += [CoveredDirect(u, s, tuple(g), tuple(b)) for u, s, g, b in part["covered"]]
        partly += [
            PartlyCoveredDirect(u, s, tuple(g), frozenset(p)) for u, s, g, p in part["partly"]
        ]
        for sku_id, disabled, user_ids in part["directOnly"]:
            only.setdefault((sku_id, frozenset(disabled)), []).extend(user_ids)
        users.update((u["id"], u) for u in part["users"])
    tenant = Tenant(
        world.skus, world.groups, GraphTranslator().users(users.values(), world.skus), None
    )
    return MigrationPlan(tuple(covered), tuple(partly), direct_only_sets(tenant, only)), tenant
