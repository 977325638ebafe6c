"""How reports name products, plans, groups and users of a tenant (or of a tenant before and
after a change): friendly catalog names for the tables, part numbers and servicePlanNames for
JSON, which scripts read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.catalog.products import Catalog
from shared.core.model import Sku, Tenant


class PlanNames:
    """servicePlanName lists in the SKU's own plan order, built once per distinct plan set."""

    def __init__(self, tenant: Tenant) -> None:
        self._skus = tenant.skus
        self._cache: dict[tuple[str, frozenset[str]], list[str]] = {}

    def names(self, sku_id: str, plan_ids: frozenset[str]) -> list[str]:
        key = (sku_id, plan_ids)
        names = self._cache.get(key)
        if names is None:
            sku = self._skus[sku_id]
            names = [p.name for p in sku.plans if p.id in plan_ids]
            self._cache[key] = names
        return names


class TenantNames:
    """Names across a tenant before and after a change (after first, then before).

    With a catalog, products and plans get Microsoft's friendly names (the table); without,
    part numbers and servicePlanNames (JSON, which scripts read).
    """

    def __init__(self, before: Tenant, after: Tenant, catalog: Catalog | None = None) -> None:
        self.before, self.after, self._catalog = before, after, catalog

    def _sku(self, sku_id: str) -> Sku | None:
        return self.after.skus.get(sku_id) or self.before.skus.get(sku_id)

    def part(self, sku_id: str) -> str:
        sku = self._sku(sku_id)
        return sku.part_number if sku else sku_id

    def product(self, sku_id: str) -> str:
        part = self.part(sku_id)
        return self._catalog.product(sku_id, part) if self._catalog else part

    def total_plans(self, sku_id: str) -> int:
        sku = self._sku(sku_id)
        return len(sku.plans) if sku else 0

    def plan_code(self, sku_id: str, plan_id: str) -> str:
        for tenant in (self.after, self.before):
            sku = tenant.skus.get(sku_id)
            if sku is not None and plan_id in sku.plan_ids:
                return sku.plan_name(plan_id)
        return plan_id

    def plans(self, sku_id: str, plan_ids: Iterable[str]) -> list[str]:
        """Plan names: in the SKU's order for JSON, sorted friendly names for the table."""
        ids = set(plan_ids)
        if self._catalog is None:
            order = [p.id for t in (self.after, self.before) for p in self._plans_of(t, sku_id)]
            rank = {plan_id: n for n, plan_id in reversed(list(enumerate(order)))}
            ordered = sorted(ids, key=lambda p: (rank.get(p, len(rank)), p))
            return [self.plan_code(sku_id, p) for p in ordered]
        return sorted(self._catalog.plan(p, self.plan_code(sku_id, p)) for p in ids)

    @staticmethod
    def _plans_of(tenant: Tenant, sku_id: str) -> tuple[Any, ...]:
        sku = tenant.skus.get(sku_id)
        return sku.plans if sku else ()

    def group(self, group_id: str | None) -> str:
        if group_id is None:
            return "direct"
        group = self.after.groups.get(group_id) or self.before.groups.get(group_id)
        return group.name if group else group_id

    def user(self, user_id: str) -> tuple[str, str]:
        user = self.after.users.get(user_id) or self.before.users.get(user_id)
        return (user.display_name, user.user_principal_name) if user else (user_id, "")

    def path_json(self, group_id: str | None) -> dict[str, Any]:
        if group_id is None:
            return {"type": "direct"}
        return {"type": "group", "groupId": group_id, "groupName": self.group(group_id)}
