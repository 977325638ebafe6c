"""The vocabulary and tenant rules of Entra group-based licensing: assignment states, error
codes, and the facts Graph does not expose but Entra enforces (snapshot section ``x-graphsim``).

References are to ``/work/shared/graph-facts.md`` (§3 licensing fields, §4 GBL semantics).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

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
NO_ERROR: frozenset[str | None] = frozenset({None, "", "None"})
HOLDING_STATES = frozenset({ACTIVE, ACTIVE_WITH_ERROR})


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
