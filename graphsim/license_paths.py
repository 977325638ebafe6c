"""Per-recomputation precomputation for the licensing processor: interned license paths (one
SKU with one disabledPlans set), their outcomes (held SKUs, assignedLicenses, enabled plans)
and shared assignedPlan entries, so a 100k-user pass computes each combination once.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .clock import iso
from .license_rules import LicensingRules
from .memberships import is_licensed_group

Json = dict[str, Any]
NOTHING: frozenset[str] = frozenset()

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


@dataclasses.dataclass(frozen=True, eq=False)
class LicensePath:
    """One SKU with one disabledPlans set; interned per call so it can key caches."""

    pid: int
    sku: str
    disabled: tuple[str, ...]
    disabled_list: list[str]  # for comparisons with JSON lists; never handed out
    enabled: frozenset[str]
    sku_disabled: tuple[str, ...]  # SKU plans not enabled by this path, in SKU plan order
    conflicting: frozenset[str]  # enabled plans that appear in a mutual-exclusion rule


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a set of holding paths yields; cached because most users share path sets."""

    held: tuple[str, ...]
    licenses: tuple[tuple[str, tuple[str, ...]], ...]
    plans: tuple[str, ...]


class PlanEntries(dict[str, Json]):
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


class RecomputeContext:
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
        self.now = iso(now)
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
        self._paths: dict[tuple[str, tuple[str, ...]], LicensePath] = {}
        self._group_paths: dict[str, tuple[LicensePath, ...]] = {}
        self._outcomes: dict[frozenset[int], Outcome] = {}
        self._sku_parts: dict[
            tuple[frozenset[LicensePath], frozenset[str]], tuple[tuple[str, ...], tuple[str, ...]]
        ] = {}
        self.plan_entries_by_id = PlanEntries(self.now, self.plan_service)

    def path(self, sku: str, disabled: Iterable[str]) -> LicensePath:
        key = (sku, tuple(disabled))
        found = self._paths.get(key)
        if found is None:
            plans = self.sku_plans.get(sku, ())
            off = set(key[1])
            enabled = frozenset(p for p in plans if p not in off)
            found = LicensePath(
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

    def group_paths(self, gid: str) -> tuple[LicensePath, ...]:
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

    def plan_entries(self, outcome: Outcome) -> list[Json]:
        """New assignedPlan entries for an outcome (shared between users: never mutate)."""
        entries = self.plan_entries_by_id
        return [entries[p] for p in outcome.plans]

    def outcome(self, paths: list[LicensePath]) -> Outcome:
        """Held SKUs, assignedLicenses and enabled plans for a set of holding paths."""
        key = frozenset([p.pid for p in paths])
        found = self._outcomes.get(key)
        if found is not None:
            return found
        by_sku: dict[str, set[LicensePath]] = {}
        for p in paths:
            by_sku.setdefault(p.sku, set()).add(p)
        dep_off = (
            self._dependency_disabled(set().union(*[p.enabled for p in paths]))
            if self.dependents
            else NOTHING
        )
        held = tuple(sorted(by_sku))
        parts = [self._sku_part(sku, frozenset(by_sku[sku]), dep_off) for sku in held]
        found = Outcome(
            held=held,
            licenses=tuple((sku, off) for sku, (off, _) in zip(held, parts, strict=True)),
            plans=tuple(dict.fromkeys(itertools.chain.from_iterable(on for _, on in parts))),
        )
        self._outcomes[key] = found
        return found

    def _sku_part(
        self, sku: str, paths: frozenset[LicensePath], dep_off: frozenset[str]
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
