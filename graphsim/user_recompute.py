"""One user's group-based licensing recomputation: hold direct assignments, apply licensed
groups all-or-none, keep paths a dependency still needs, then write the outcome and release
seats no longer held. The rules and their order are in :mod:`graphsim.licensing`'s docstring.
"""

from __future__ import annotations

from typing import Any

from .license_paths import LicensePath, Outcome, RecomputeContext
from .license_rules import (
    ACTIVE,
    ACTIVE_WITH_ERROR,
    COUNT_VIOLATION,
    DEPENDENCY_VIOLATION,
    ERROR,
    HOLDING_STATES,
    MUTUALLY_EXCLUSIVE_VIOLATION,
    PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
    UNIQUENESS_VIOLATION,
    LicensingRules,
)

Json = dict[str, Any]


def recompute_user(
    user: Json, licensed: list[tuple[str, tuple[LicensePath, ...]]], ctx: RecomputeContext
) -> bool:
    """Recompute one user against its licensed groups (id, paths); True when anything changed."""
    run = UserRecompute(user, ctx)
    run.hold_direct()
    run.apply_groups(licensed)
    run.keep_dependency_blocked()
    return run.write()


class UserRecompute:
    """The state of one user's recomputation: which paths hold, which seats it has."""

    def __init__(self, user: Json, ctx: RecomputeContext) -> None:
        self.user = user
        self.ctx = ctx
        rules = ctx.rules
        self.old_states: list[Json] = list(user.get("licenseAssignmentStates") or [])
        self.old_by_key: dict[tuple[str | None, str], Json] = {
            (e.get("assignedByGroup"), e.get("skuId", "")): e for e in self.old_states
        }
        self.established = {
            k for k, e in self.old_by_key.items() if e.get("state") in HOLDING_STATES
        }
        self.seated = {lic.get("skuId") for lic in user.get("assignedLicenses") or []}
        self.location = str(user.get("usageLocation") or rules.tenant_country).upper()
        self.duplicate = user.get("id") in rules.duplicate_proxy_users
        self.direct = [e for e in self.old_states if e.get("assignedByGroup") is None]
        self.holding: list[LicensePath] = []
        # sku ids per conflict-relevant plan among holding paths (for mutual exclusion)
        self.conflict_owners: dict[str, set[str]] = {}
        self.entries: dict[tuple[str | None, str], tuple[LicensePath, str, str | None]] = {}

    def hold(self, path: LicensePath) -> None:
        """The path applies; it takes a seat unless the user already has one for its SKU."""
        self.holding.append(path)
        for plan in path.conflicting:
            self.conflict_owners.setdefault(plan, set()).add(path.sku)
        if path.sku not in self.seated:
            self.ctx.consume(path.sku, 1)
            self.seated.add(path.sku)

    def hold_direct(self) -> None:
        """Direct assignments are input (§3.5): they hold unless marked Error."""
        for entry in self.direct:
            if entry.get("state") != ERROR:
                self.hold(self.ctx.path(entry.get("skuId", ""), entry.get("disabledPlans") or []))

    def check(self, gid: str, path: LicensePath) -> str | None:
        """Every error but CountViolation, in the order the module docstring gives."""
        if self.duplicate:
            return UNIQUENESS_VIOLATION
        if self.location in self.ctx.rules.prohibited_usage_locations.get(path.sku, ()):
            return PROHIBITED_IN_USAGE_LOCATION_VIOLATION
        if (gid, path.sku) not in self.established:  # the existing path keeps working (§4.2)
            for plan in path.conflicting:
                for other in self.ctx.conflicts[plan]:
                    if self.conflict_owners.get(other, set()) - {path.sku}:
                        return MUTUALLY_EXCLUSIVE_VIOLATION
        return None

    def apply_groups(self, licensed: list[tuple[str, tuple[LicensePath, ...]]]) -> None:
        """All-or-none per group (§4.1); already-applied groups first, then by group id."""
        ctx = self.ctx
        applied = {g for g, _ in self.established if g is not None}
        if applied:
            licensed = sorted(licensed, key=lambda item: (item[0] not in applied, item[0]))
        for gid, paths in licensed:
            if len(paths) == 1:  # the common case, without the all-or-none bookkeeping
                p = paths[0]
                err = self.check(gid, p)
                if err is None and p.sku not in self.seated and ctx.free_seats(p.sku) <= 0:
                    err = COUNT_VIOLATION
                if err is None:
                    self.hold(p)
                    self.entries[(gid, p.sku)] = (p, ACTIVE, None)
                else:
                    self.entries[(gid, p.sku)] = (p, ERROR, err)
                continue
            errors = [self.check(gid, p) for p in paths]
            if not any(errors):
                need = {p.sku for p in paths if p.sku not in self.seated}
                full = {sku for sku in need if ctx.free_seats(sku) <= 0}
                errors = [COUNT_VIOLATION if p.sku in full else None for p in paths]
            first = next((e for e in errors if e), None)
            if first is None:
                for p in paths:
                    self.hold(p)
                    self.entries[(gid, p.sku)] = (p, ACTIVE, None)
            else:  # none of this group's products is assigned to this user
                for p, err in zip(paths, errors, strict=True):
                    self.entries[(gid, p.sku)] = (p, ERROR, err or first)

    def keep_dependency_blocked(self) -> None:
        """A path that would disappear stays while a held plan depends on it (§4.2)."""
        rules = self.ctx.rules
        gone = sorted(
            (k for k in self.established if k[0] is not None and k not in self.entries),
            key=lambda k: (k[0] or "", k[1]),
        )
        if not gone or not rules.plan_dependencies:
            return
        enabled: set[str] = set()
        for p in self.holding:
            enabled |= p.enabled
        for key in gone:
            old = self.old_by_key[key]
            path = self.ctx.path(key[1], old.get("disabledPlans") or [])
            if _still_needed(path, enabled, rules):
                self.hold(path)
                enabled |= path.enabled
                self.entries[key] = (path, ACTIVE_WITH_ERROR, DEPENDENCY_VIOLATION)

    def write(self) -> bool:
        """Write the outcome into the user and release seats no longer held."""
        ctx, user = self.ctx, self.user
        outcome = ctx.outcome(self.holding)
        for sku in self.seated - set(outcome.held):
            ctx.consume(sku, -1)

        states: list[Json] = list(self.direct)
        for key in sorted(self.entries, key=lambda k: (k[0] or "", k[1])):
            states.append(self._entry(key, *self.entries[key]))
        old_licenses: list[Json] = user.get("assignedLicenses") or []
        licenses = [{"disabledPlans": list(off), "skuId": sku} for sku, off in outcome.licenses]
        licenses_changed = _licenses_differ(old_licenses, licenses)
        old_plans: list[Json] = user.get("assignedPlans") or []
        plans = self._plans(outcome, old_plans)

        changed = states != self.old_states or licenses_changed or plans is not old_plans
        user["licenseAssignmentStates"] = states
        if licenses_changed:
            user["assignedLicenses"] = licenses
        user["assignedPlans"] = plans
        return changed

    def _plans(self, outcome: Outcome, old: list[Json]) -> list[Json]:
        """assignedPlans for the outcome: the old list itself when nothing changed."""
        if not old:
            return list(self.ctx.plan_entries(outcome)) if outcome.plans else old
        ids = [
            e.get("servicePlanId") if e.get("capabilityStatus") == "Enabled" else None for e in old
        ]
        if len(ids) == len(outcome.plans) and tuple(ids) == outcome.plans:
            return old
        by_id = {pid: e for pid, e in zip(ids, old, strict=True) if pid is not None}
        entries = self.ctx.plan_entries_by_id
        return [by_id.get(p) or entries[p] for p in outcome.plans]

    def _entry(
        self, key: tuple[str | None, str], path: LicensePath, state: str, error: str | None
    ) -> Json:
        """The old entry when nothing changed (keeps lastUpdatedDateTime), else a new one."""
        old = self.old_by_key.get(key)
        if (
            old is not None
            and old.get("state") == state
            and old.get("error") == error
            and (old.get("disabledPlans") or []) == path.disabled_list
        ):
            return old
        return {
            "assignedByGroup": key[0],
            "disabledPlans": list(path.disabled),
            "error": error,
            "lastUpdatedDateTime": self.ctx.now,
            "skuId": key[1],
            "state": state,
        }


def _still_needed(path: LicensePath, enabled: set[str], rules: LicensingRules) -> bool:
    """True when a plan held elsewhere depends on a plan only ``path`` provides (§4.2)."""
    for plan in rules.plan_dependencies.keys() & enabled:
        required = rules.plan_dependencies[plan]
        if not (required & enabled) and required & path.enabled:
            return True
    return False


def _licenses_differ(old: list[Json], new: list[Json]) -> bool:
    """Same SKUs with the same disabled plans, whatever the order, is no change."""
    if old == new:
        return False
    if len(old) != len(new):
        return True
    old_map = {lic.get("skuId"): sorted(lic.get("disabledPlans") or []) for lic in old}
    return any(old_map.get(lic["skuId"]) != sorted(lic["disabledPlans"]) for lic in new)
