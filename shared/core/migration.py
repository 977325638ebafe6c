"""The direct → group migration plan, from one evaluated tenant.

Microsoft's documented migration: add users to licensing groups that mirror their direct
plans, check each user shows the group path active without errors (one seat either way), then
remove the direct assignments gradually, a small batch first. Never remove first. This module
sorts every direct assignment into where it stands on that road:

* **removal candidates**: fully covered by group paths; safe when every covering path is
  Active without errors (the same test as the RedundantDirectAssignment finding, through
  `findings.direct_coverage`), otherwise "not yet" with the unhealthy groups named;
* **would drop plans**: group paths exist but miss plans only the direct assignment enables
  (the DirectOnlyPlans finding): the plans are named;
* **direct only**: SKUs held only directly, grouped by SKU and disabled-plan set, each with a
  suggested licensing group (an existing group with exactly those plans when there is one).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.core.direct_coverage import direct_coverage
from shared.core.effective import EffectiveLicense, effective_licenses
from shared.core.model import Tenant


@dataclass(frozen=True, slots=True)
class CoveredDirect:
    """A direct assignment fully covered by group paths: a removal candidate."""

    user_id: str
    sku_id: str
    group_ids: tuple[str | None, ...]
    unhealthy_group_ids: tuple[str | None, ...]

    @property
    def safe(self) -> bool:
        return not self.unhealthy_group_ids


@dataclass(frozen=True, slots=True)
class PartlyCoveredDirect:
    """A direct assignment whose removal would drop `plans` that no group path enables."""

    user_id: str
    sku_id: str
    group_ids: tuple[str | None, ...]
    plans: frozenset[str]


@dataclass(frozen=True, slots=True)
class DirectOnlySet:
    """Users holding `sku_id` only directly, with the same disabled plans: one licensing group."""

    sku_id: str
    disabled_plans: frozenset[str]
    enabled_plans: int
    user_ids: tuple[str, ...]
    suggested_name: str
    existing_group_ids: tuple[str, ...]
    """Groups that already assign the SKU with exactly these disabled plans, and nothing else."""


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    covered: tuple[CoveredDirect, ...]
    partly_covered: tuple[PartlyCoveredDirect, ...]
    direct_only: tuple[DirectOnlySet, ...]

    @property
    def safe(self) -> tuple[CoveredDirect, ...]:
        return tuple(c for c in self.covered if c.safe)

    @property
    def not_yet(self) -> tuple[CoveredDirect, ...]:
        return tuple(c for c in self.covered if not c.safe)


def suggested_group_name(part_number: str, enabled_plans: int) -> str:
    """`Licensing_<PART>_<n>plans`: what the group assigns, readable in any admin center."""
    part = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in part_number.strip())
    return f"Licensing_{part}_{enabled_plans}plans"


def migration_plan(
    tenant: Tenant, licenses: Mapping[str, Sequence[EffectiveLicense]] | None = None
) -> MigrationPlan:
    """Sort every direct assignment in the tenant; `licenses` defaults to a fresh computation."""
    licenses = effective_licenses(tenant) if licenses is None else licenses
    covered: list[CoveredDirect] = []
    partly: list[PartlyCoveredDirect] = []
    only: dict[tuple[str, frozenset[str]], list[str]] = {}
    for user in tenant.users.values():
        for lic in licenses.get(user.id, ()):
            direct = lic.direct_path
            if direct is None:
                continue
            coverage = direct_coverage(user, lic)
            if coverage is None:
                disabled = tenant.skus[lic.sku_id].plan_ids - direct.enabled_plans
                only.setdefault((lic.sku_id, disabled), []).append(user.id)
            elif coverage.direct_only:
                partly.append(
                    PartlyCoveredDirect(
                        user.id, lic.sku_id, coverage.group_ids, coverage.direct_only
                    )
                )
            else:
                covered.append(
                    CoveredDirect(
                        user.id, lic.sku_id, coverage.group_ids, coverage.unhealthy_group_ids
                    )
                )
    return MigrationPlan(tuple(covered), tuple(partly), direct_only_sets(tenant, only))


def direct_only_sets(
    tenant: Tenant, only: Mapping[tuple[str, frozenset[str]], list[str]]
) -> tuple[DirectOnlySet, ...]:
    """Users holding a SKU only directly, one set per (SKU, disabled plans), each with a
    suggested licensing group (or the existing groups that already assign exactly that)."""
    taken = {g.name.lower() for g in tenant.groups.values()}
    sets = []
    for (sku_id, disabled), user_ids in sorted(
        only.items(), key=lambda item: (tenant.skus[item[0][0]].part_number, -len(item[1]))
    ):
        sku = tenant.skus[sku_id]
        enabled = len(sku.plan_ids - disabled)
        # a group assigning other products too is no match: its members take those seats as
        # well, and a product short of seats fails all of the group's for them
        existing = tuple(
            g.id
            for g in tenant.groups.values()
            if len(g.licenses) == 1
            and g.licenses[0].sku_id == sku_id
            and g.licenses[0].disabled_plans & sku.plan_ids == disabled
        )
        base = name = suggested_group_name(sku.part_number, enabled)
        n = 2
        while name.lower() in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name.lower())
        sets.append(DirectOnlySet(sku_id, disabled, enabled, tuple(user_ids), name, existing))
    return tuple(sets)
