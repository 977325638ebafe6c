"""Entra group-based licensing (GBL), re-implemented from Microsoft's documentation.

This module plays Microsoft's part: it takes Graph-shaped JSON dicts (users, groups,
subscribedSkus, exactly as ``GET`` returns them) and recomputes the licensing outcome for the
users it is told about, mutating the dicts in place. References are to
``/work/shared/graph-facts.md`` (§3 licensing fields, §4 GBL semantics), which paraphrases
learn.microsoft.com.

Rules implemented (each cited where it is applied):

* Only first-level *user* members of a licensed group get its licenses; nested groups grant
  nothing (§4.1 "Nested groups are NOT supported").
* A SKU from several paths (direct + groups) consumes ONE seat and enables the union of the
  paths' enabled plans (§4.1 "Resulting state = union ...").
* All-or-none per group: if any product of a group fails for a user, none of that group's
  products is assigned (§4.1, licensing-groups-resolve-problems).
* Errors (§3.2, §4.2): CountViolation, MutuallyExclusiveViolation, DependencyViolation,
  ProhibitedInUsageLocationViolation, UniquenessViolation.
* No automatic retry (§3.4): freed seats do not fix users in CountViolation; only recomputing
  the user (a reprocess or a change that touches them) does. ``process_users`` therefore
  recomputes exactly the users it is given and nobody else.

Behaviour choices where the documentation is silent (documented, not Microsoft statements):

* Error code of sibling products (all-or-none): every entry of a failing group gets state
  ``Error``. A product that failed carries its own error; products that would have succeeded
  carry the group's *first* failure (in the group's ``assignedLicenses`` order), so every
  entry explains why it is not applied.
* Check order per product: UniquenessViolation, ProhibitedInUsageLocationViolation,
  MutuallyExclusiveViolation, CountViolation. The seat check comes last so a product that fails
  for another reason never takes a seat.
* Seat order inside one ``process_users`` call: users who need no new seat are recomputed
  first (so seats freed by leavers in the same batch are available), then users who want a new
  seat, each group in sorted user-id order; newcomers are seated first-come while
  ``prepaidUnits.enabled - consumedUnits > 0``. Users already holding a seat keep it.
* Mutual exclusion: a path that was already applied (state Active/ActiveWithError before this
  recomputation) keeps working; new paths are checked against it. Direct assignments always
  count as applied (``assignLicense`` validates them synchronously, §3.5). Among new group
  paths the group with the smaller id wins. Products of the *same* group are not checked
  against each other.
* Dependencies (``planDependencies``: dependent plan -> any one of the required plans):
  a dependent plan whose prerequisites are enabled on no path the user holds is disabled in the
  user's ``assignedLicenses``/``assignedPlans`` (§4.1 "or the dependent plan is disabled");
  the assignment entry still shows the group's own ``disabledPlans``. When a path would
  disappear but a plan on another held path depends on a plan only that path provides, the
  path is kept with ``ActiveWithError``/``DependencyViolation`` (§4.2) until the dependent
  goes away or the user rejoins.
* ``usageLocation`` missing: the tenant country is used for the check and never written back
  (§4.2 "users without one inherit the directory's location ... never overwrites").
* Direct assignments (``assignedByGroup`` null) are input set by ``assignLicense``; they are
  kept untouched and hold their SKU unless their state is ``Error``. They take a seat even if
  the SKU is full (the HTTP layer refuses over-assignment before it gets here).
* ``assignedPlans``: one entry per enabled plan (deduplicated across SKUs), capabilityStatus
  ``Enabled``; lost plans are dropped (Graph would age them through Suspended/Deleted, §3.1;
  nothing here reads that history). New entries are shared between users when identical to
  save memory at 100k users: treat them as immutable, replace rather than mutate.
* A group with ``securityEnabled`` false grants nothing (only security-enabled groups can be
  licensed, §4.1). A SKU missing from ``skus`` has no seats, hence CountViolation.
* Disabled accounts are licensed like everyone else (they still consume seats).
* State ``Disabled`` is never produced (it would need subscription suspension, not modelled).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"

ACTIVE = "Active"
ACTIVE_WITH_ERROR = "ActiveWithError"
DISABLED = "Disabled"
ERROR = "Error"
STATES = (ACTIVE, ACTIVE_WITH_ERROR, DISABLED, ERROR)

COUNT_VIOLATION = "CountViolation"
MUTUALLY_EXCLUSIVE_VIOLATION = "MutuallyExclusiveViolation"
DEPENDENCY_VIOLATION = "DependencyViolation"
PROHIBITED_IN_USAGE_LOCATION_VIOLATION = "ProhibitedInUsageLocationViolation"
UNIQUENESS_VIOLATION = "UniquenessViolation"
OTHER = "Other"
ERRORS = (
    COUNT_VIOLATION,
    MUTUALLY_EXCLUSIVE_VIOLATION,
    DEPENDENCY_VIOLATION,
    PROHIBITED_IN_USAGE_LOCATION_VIOLATION,
    UNIQUENESS_VIOLATION,
    OTHER,
)

# §3.2: real payloads may say "None" (PowerShell samples) or "" instead of null.
_NO_ERROR: frozenset[str | None] = frozenset({None, "", "None"})
_HOLDING_STATES = frozenset({ACTIVE, ACTIVE_WITH_ERROR})
_NOTHING: frozenset[str] = frozenset()

# Graph's assignedPlan.service is a workload name, not the plan name; these are the names real
# tenants show for the common workloads. Anything else falls back to the plan name.
_SERVICE_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("EXCHANGE", "exchange"),
    ("SHAREPOINT", "SharePoint"),
    ("ONEDRIVE", "SharePoint"),
    ("MCO", "MicrosoftCommunicationsOnline"),
    ("TEAMS", "TeamspaceAPI"),
    ("OFFICESUBSCRIPTION", "MicrosoftOffice"),
    ("AAD_PREMIUM", "AADPremiumService"),
    ("MFA_PREMIUM", "MultiFactorService"),
    ("INTUNE", "SCO"),
    ("RMS_S", "RMSOnline"),
    ("ADALLOM", "Adallom"),
    ("YAMMER", "YammerEnterprise"),
    ("SWAY", "Sway"),
    ("BI_AZURE", "PowerBI"),
    ("POWER_BI", "PowerBI"),
    ("FLOW", "ProcessSimple"),
    ("POWERAPPS", "PowerAppsService"),
    ("PROJECT", "ProjectWorkManagement"),
    ("FORMS", "OfficeForms"),
    ("STREAM", "MicrosoftStream"),
    ("WINDEFATP", "WindowsDefenderATP"),
    ("ATP_ENTERPRISE", "exchange"),
)


@functools.cache
def service_name(plan_name: str) -> str:
    """Workload name for ``assignedPlans[].service`` (best effort; Graph does not document it)."""
    upper = plan_name.upper()
    for prefix, service in _SERVICE_BY_PREFIX:
        if upper.startswith(prefix):
            return service
    return plan_name


def iso_z(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, as Graph writes timestamps; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class LicensingRules:
    """Tenant facts Graph does not expose but Entra enforces (snapshot section ``x-graphsim``).

    No public machine-readable list of conflicting or dependent plans exists (data/README), so
    tenants declare them explicitly.
    """

    tenant_country: str = "US"
    prohibited_usage_locations: Mapping[str, frozenset[str]] = dataclasses.field(
        default_factory=dict
    )
    mutually_exclusive_plans: tuple[tuple[str, str], ...] = ()
    plan_dependencies: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    duplicate_proxy_users: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> LicensingRules:
        """Build from the ``x-graphsim`` dict (camelCase keys; all optional)."""
        cfg = config or {}
        prohibited = {
            str(sku): frozenset(str(c).upper() for c in countries)
            for sku, countries in (cfg.get("prohibitedUsageLocations") or {}).items()
        }
        pairs: list[tuple[str, str]] = []
        for pair in cfg.get("mutuallyExclusivePlans") or []:
            items = [str(p) for p in pair]
            pairs.extend(
                (items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))
            )
        deps = {
            str(plan): frozenset(str(r) for r in required)
            for plan, required in (cfg.get("planDependencies") or {}).items()
        }
        return cls(
            tenant_country=str(cfg.get("tenantCountry") or "US").upper(),
            prohibited_usage_locations=prohibited,
            mutually_exclusive_plans=tuple(pairs),
            plan_dependencies=deps,
            duplicate_proxy_users=frozenset(str(u) for u in cfg.get("duplicateProxyUsers") or []),
        )

    def conflicts(self) -> dict[str, frozenset[str]]:
        """Plan id -> plans it may not coexist with (the pairs made symmetric)."""
        out: dict[str, set[str]] = {}
        for a, b in self.mutually_exclusive_plans:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
        return {plan: frozenset(others) for plan, others in out.items()}


# ------------------------------------------------------------------------------ memberships


def member_user_ids(group: Mapping[str, Any]) -> list[str]:
    """Ids of the group's direct *user* members; nested groups grant nothing (§4.1).

    A member without ``@odata.type`` is taken to be a user (older snapshots omit it).
    """
    return [
        m["id"]
        for m in group.get("members") or []
        if m.get("@odata.type", USER_TYPE) == USER_TYPE and "id" in m
    ]


def index_memberships(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """User id -> ids of groups it is a direct member of; build once, reuse across calls."""
    index: dict[str, set[str]] = {}
    for gid, group in groups.items():
        for uid in member_user_ids(group):
            index.setdefault(uid, set()).add(gid)
    return index


def is_licensed_group(group: Mapping[str, Any] | None) -> bool:
    """True when the group carries licenses that Entra would apply (§4.1: security-enabled)."""
    return bool(
        group is not None
        and group.get("assignedLicenses")
        and group.get("securityEnabled", True) is not False
    )


def licensed_group_ids_for_user(user_id: str, groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Sorted ids of licensed groups that have ``user_id`` as a direct user member."""
    return sorted(
        gid
        for gid, group in groups.items()
        if is_licensed_group(group) and user_id in member_user_ids(group)
    )


def license_processing_state(group: Mapping[str, Any]) -> str | None:
    """licenseProcessingState whether stored as a string or as ``{"state": ...}`` (§3.3)."""
    value = group.get("licenseProcessingState")
    if isinstance(value, Mapping):
        state = value.get("state")
        return None if state is None else str(state)
    return None if value is None else str(value)


def set_license_processing_state(group: Json, state: str) -> None:
    """Write licenseProcessingState back in the form found (string when absent)."""
    if isinstance(group.get("licenseProcessingState"), Mapping):
        group["licenseProcessingState"] = {**group["licenseProcessingState"], "state": state}
    else:
        group["licenseProcessingState"] = state


def has_error(entry: Mapping[str, Any]) -> bool:
    """An assignment entry is in error when its state is Error or it names an error (§3.2)."""
    return entry.get("state") == ERROR or entry.get("error") not in _NO_ERROR


def members_with_license_errors(
    group_id: str, users: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Direct user members whose assignment from this group is in error (§3.3).

    Users who left the group but keep a DependencyViolation entry are no longer members, so
    they are not listed (the relationship is on the group's members).
    """
    group = groups.get(group_id)
    if group is None:
        return []
    return [uid for uid in member_user_ids(group) if _has_error_from(users.get(uid), group_id)]


def group_has_members_with_errors(
    group_id: str, users: Mapping[str, Mapping[str, Any]], index: Mapping[str, Iterable[str]]
) -> bool:
    """Backs ``$filter=hasMembersWithLicenseErrors eq true`` using the membership index."""
    return any(
        group_id in gids and _has_error_from(users.get(uid), group_id)
        for uid, gids in index.items()
    )


def _has_error_from(user: Mapping[str, Any] | None, group_id: str) -> bool:
    if user is None:
        return False
    return any(
        e.get("assignedByGroup") == group_id and has_error(e)
        for e in user.get("licenseAssignmentStates") or []
    )


def recount_consumed_units(
    users: Mapping[str, Mapping[str, Any]], skus: Mapping[str, Json]
) -> None:
    """Set every SKU's consumedUnits to the number of users holding it (one seat per user)."""
    counts = dict.fromkeys(skus, 0)
    for user in users.values():
        for lic in user.get("assignedLicenses") or []:
            if lic.get("skuId") in counts:
                counts[lic["skuId"]] += 1
    for sku_id, count in counts.items():
        skus[sku_id]["consumedUnits"] = count


def direct_removal_blockers(
    user: Mapping[str, Any],
    sku_id: str,
    skus: Mapping[str, Mapping[str, Any]],
    rules: LicensingRules,
) -> list[str]:
    """Plans that would lose their last prerequisite if the user's direct ``sku_id`` went.

    For the HTTP layer's ``assignLicense`` ``removeLicenses``: Graph refuses such a removal
    ("License assignment failed because service plan <id> depends on ...", data/README);
    group paths are handled by :func:`process_users` as DependencyViolation instead.
    """

    def enabled(entry: Mapping[str, Any]) -> set[str]:
        sku = skus.get(entry.get("skuId", "")) or {}
        off = set(entry.get("disabledPlans") or [])
        return {p["servicePlanId"] for p in sku.get("servicePlans") or []} - off

    holding = [
        e for e in user.get("licenseAssignmentStates") or [] if e.get("state") in _HOLDING_STATES
    ]
    removed = [e for e in holding if e.get("assignedByGroup") is None and e.get("skuId") == sku_id]
    if not removed or not rules.plan_dependencies:
        return []
    rest: set[str] = set().union(*[enabled(e) for e in holding if e not in removed])
    gone = set().union(*[enabled(e) for e in removed]) - rest
    return sorted(
        plan
        for plan in rest & rules.plan_dependencies.keys()
        if rules.plan_dependencies[plan] & gone and not rules.plan_dependencies[plan] & rest
    )


# ------------------------------------------------------------------------------ processing


@dataclasses.dataclass(frozen=True, eq=False)
class _Path:
    """One SKU with one disabledPlans set; interned per call so it can key caches."""

    pid: int
    sku: str
    disabled: tuple[str, ...]
    disabled_list: list[str]  # for comparisons with JSON lists; never handed out
    enabled: frozenset[str]
    sku_disabled: tuple[str, ...]  # SKU plans not enabled by this path, in SKU plan order
    conflicting: frozenset[str]  # enabled plans that appear in a mutual-exclusion rule


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What a set of holding paths yields; cached because most users share path sets."""

    held: tuple[str, ...]
    licenses: tuple[tuple[str, tuple[str, ...]], ...]
    plans: tuple[str, ...]


class _PlanEntries(dict[str, Json]):
    """Plan id -> a new assignedPlan entry, created on first use and shared afterwards."""

    def __init__(self, now: str, services: Mapping[str, str]) -> None:
        super().__init__()
        self.now = now
        self.services = services

    def __missing__(self, plan_id: str) -> Json:
        entry = {
            "assignedDateTime": self.now,
            "capabilityStatus": "Enabled",
            "service": self.services.get(plan_id, plan_id),
            "servicePlanId": plan_id,
        }
        self[plan_id] = entry
        return entry


class _Context:
    """Per-call precomputation: SKU plan sets, interned paths, shared assignedPlan entries."""

    def __init__(
        self,
        groups: Mapping[str, Mapping[str, Any]],
        skus: Mapping[str, Json],
        rules: LicensingRules,
        now: datetime,
    ) -> None:
        self.groups = groups
        self.skus = skus
        self.rules = rules
        self.now = iso_z(now)
        self.conflicts = rules.conflicts()
        self.dependents = frozenset(rules.plan_dependencies)
        self.sku_plans: dict[str, tuple[str, ...]] = {}
        self.plan_service: dict[str, str] = {}
        for sku_id, sku in skus.items():
            ids = []
            for plan in sku.get("servicePlans") or []:
                pid = plan["servicePlanId"]
                ids.append(pid)
                self.plan_service.setdefault(
                    pid, service_name(str(plan.get("servicePlanName") or pid))
                )
            self.sku_plans[sku_id] = tuple(dict.fromkeys(ids))
        self._paths: dict[tuple[str, tuple[str, ...]], _Path] = {}
        self._group_paths: dict[str, tuple[_Path, ...]] = {}
        self._outcomes: dict[frozenset[int], _Outcome] = {}
        self._sku_parts: dict[
            tuple[frozenset[_Path], frozenset[str]], tuple[tuple[str, ...], tuple[str, ...]]
        ] = {}
        self.plan_entries_by_id = _PlanEntries(self.now, self.plan_service)

    def path(self, sku: str, disabled: Iterable[str]) -> _Path:
        key = (sku, tuple(disabled))
        found = self._paths.get(key)
        if found is None:
            plans = self.sku_plans.get(sku, ())
            off = set(key[1])
            enabled = frozenset(p for p in plans if p not in off)
            found = _Path(
                pid=len(self._paths),
                sku=sku,
                disabled=key[1],
                disabled_list=list(key[1]),
                enabled=enabled,
                sku_disabled=tuple(p for p in plans if p in off),
                conflicting=frozenset(p for p in enabled if p in self.conflicts),
            )
            self._paths[key] = found
        return found

    def group_paths(self, gid: str) -> tuple[_Path, ...]:
        """The group's paths in its assignedLicenses order; empty when it licenses nothing."""
        found = self._group_paths.get(gid)
        if found is None:
            group = self.groups.get(gid)
            if not is_licensed_group(group):
                found = ()
            else:
                assert group is not None
                found = tuple(
                    self.path(lic["skuId"], lic.get("disabledPlans") or [])
                    for lic in group["assignedLicenses"]
                )
            self._group_paths[gid] = found
        return found

    def free_seats(self, sku_id: str) -> int:
        sku = self.skus.get(sku_id)
        if sku is None:
            return 0
        enabled = int((sku.get("prepaidUnits") or {}).get("enabled") or 0)
        return enabled - int(sku.get("consumedUnits") or 0)

    def consume(self, sku_id: str, delta: int) -> None:
        sku = self.skus.get(sku_id)
        if sku is not None:
            sku["consumedUnits"] = int(sku.get("consumedUnits") or 0) + delta

    def plan_entries(self, outcome: _Outcome) -> list[Json]:
        """New assignedPlan entries for an outcome (shared between users: never mutate)."""
        entries = self.plan_entries_by_id
        return [entries[p] for p in outcome.plans]

    def outcome(self, paths: list[_Path]) -> _Outcome:
        """Held SKUs, assignedLicenses and enabled plans for a set of holding paths."""
        key = frozenset([p.pid for p in paths])
        found = self._outcomes.get(key)
        if found is not None:
            return found
        by_sku: dict[str, set[_Path]] = {}
        for p in paths:
            by_sku.setdefault(p.sku, set()).add(p)
        dep_off = (
            self._dependency_disabled(set().union(*[p.enabled for p in paths]))
            if self.dependents
            else _NOTHING
        )
        held = tuple(sorted(by_sku))
        parts = [self._sku_part(sku, frozenset(by_sku[sku]), dep_off) for sku in held]
        found = _Outcome(
            held=held,
            licenses=tuple((sku, off) for sku, (off, _) in zip(held, parts, strict=True)),
            plans=tuple(dict.fromkeys(itertools.chain.from_iterable(on for _, on in parts))),
        )
        self._outcomes[key] = found
        return found

    def _sku_part(
        self, sku: str, paths: frozenset[_Path], dep_off: frozenset[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(disabled plans, enabled plans) of one SKU: what its paths leave off, union-wise."""
        plans = self.sku_plans.get(sku, ())
        if dep_off:
            dep_off = dep_off.intersection(plans)
        key = (paths, dep_off)
        found = self._sku_parts.get(key)
        if found is None:
            first, *rest = paths
            if not rest and not dep_off:
                disabled = first.sku_disabled
            else:
                off = set(first.sku_disabled).intersection(*[p.sku_disabled for p in rest])
                off |= dep_off
                disabled = tuple(p for p in plans if p in off)
            dset = set(disabled)
            found = (disabled, tuple(p for p in plans if p not in dset))
            self._sku_parts[key] = found
        return found

    def _dependency_disabled(self, enabled: set[str]) -> frozenset[str]:
        """Dependent plans with no prerequisite enabled anywhere are disabled (§4.1)."""
        if not self.dependents:
            return frozenset()
        active = set(enabled)
        off: set[str] = set()
        changed = True
        while changed:  # chains: disabling one plan may orphan another
            changed = False
            for plan in self.dependents & active:
                if not self.rules.plan_dependencies[plan] & active:
                    active.discard(plan)
                    off.add(plan)
                    changed = True
        return frozenset(off)


def process_users(
    user_ids: Iterable[str],
    users: Mapping[str, Json],
    groups: Mapping[str, Mapping[str, Any]],
    skus: Mapping[str, Json],
    rules: LicensingRules,
    now: datetime,
    index: Mapping[str, Iterable[str]] | None = None,
) -> set[str]:
    """Recompute the group-based licensing of ``user_ids``; return the ids whose state changed.

    Mutates the users (licenseAssignmentStates, assignedLicenses, assignedPlans) and the SKUs'
    consumedUnits. Unknown ids are ignored. Entra does not retry anyone by itself (§3.4): only
    the users passed here are recomputed. Order: users needing no new seat first, then the
    rest, each in sorted id order (see module docstring).
    """
    if index is None:
        index = index_memberships(groups)
    with paused_cyclic_gc():
        ctx = _Context(groups, skus, rules, now)
        keep: list[tuple[str, list[tuple[str, tuple[_Path, ...]]]]] = []
        want: list[tuple[str, list[tuple[str, tuple[_Path, ...]]]]] = []
        for uid in sorted(set(user_ids)):
            user = users.get(uid)
            if user is None:
                continue
            licensed = [(g, ctx.group_paths(g)) for g in sorted(index.get(uid, ()))]
            licensed = [(g, paths) for g, paths in licensed if paths]
            held = {lic.get("skuId") for lic in user.get("assignedLicenses") or []}
            wanted = {p.sku for _, paths in licensed for p in paths}
            wanted.update(
                e.get("skuId")
                for e in user.get("licenseAssignmentStates") or []
                if e.get("assignedByGroup") is None
            )
            (want if wanted - held else keep).append((uid, licensed))
        changed: set[str] = set()
        for uid, licensed in keep + want:
            if _recompute_user(users[uid], licensed, ctx):
                changed.add(uid)
    return changed


@contextmanager
def paused_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic GC while building or processing a big tenant.

    A 100k-user pass allocates millions of acyclic dicts and lists; repeated generation-2
    scans over the whole tenant would cost ~40% of the run. Nesting is safe.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _recompute_user(
    user: Json, licensed: list[tuple[str, tuple[_Path, ...]]], ctx: _Context
) -> bool:
    """Recompute one user against its licensed groups (id, paths); True when anything changed."""
    run = _UserRun(user, ctx)
    run.hold_direct()
    run.apply_groups(licensed)
    run.keep_dependency_blocked()
    return run.write()


class _UserRun:
    """The state of one user's recomputation: which paths hold, which seats it has."""

    def __init__(self, user: Json, ctx: _Context) -> None:
        self.user = user
        self.ctx = ctx
        rules = ctx.rules
        self.old_states: list[Json] = list(user.get("licenseAssignmentStates") or [])
        self.old_by_key: dict[tuple[str | None, str], Json] = {
            (e.get("assignedByGroup"), e.get("skuId", "")): e for e in self.old_states
        }
        self.established = {
            k for k, e in self.old_by_key.items() if e.get("state") in _HOLDING_STATES
        }
        self.seated = {lic.get("skuId") for lic in user.get("assignedLicenses") or []}
        self.location = str(user.get("usageLocation") or rules.tenant_country).upper()
        self.duplicate = user.get("id") in rules.duplicate_proxy_users
        self.direct = [e for e in self.old_states if e.get("assignedByGroup") is None]
        self.holding: list[_Path] = []
        # sku ids per conflict-relevant plan among holding paths (for mutual exclusion)
        self.conflict_owners: dict[str, set[str]] = {}
        self.entries: dict[tuple[str | None, str], tuple[_Path, str, str | None]] = {}

    def hold(self, path: _Path) -> None:
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

    def check(self, gid: str, path: _Path) -> str | None:
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

    def apply_groups(self, licensed: list[tuple[str, tuple[_Path, ...]]]) -> None:
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

    def _plans(self, outcome: _Outcome, old: list[Json]) -> list[Json]:
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
        self, key: tuple[str | None, str], path: _Path, state: str, error: str | None
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


def _still_needed(path: _Path, enabled: set[str], rules: LicensingRules) -> bool:
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
