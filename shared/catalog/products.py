"""Friendly product and service-plan names from Microsoft's licensing catalog CSV.

The CSV ("Product names and service plan identifiers for licensing") ships in `shared/data/`.
It is read once, on first use, because most runs of a queue worker never need names. Values
are trimmed (the file has non-breaking spaces and stray whitespace) and keyed on GUIDs, which
are the only stable identifiers in it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.core.model import Tenant

CATALOG_CSV = Path(__file__).parent.parent / "data" / "product-service-plans.csv"
_WHITESPACE = " \t\r\n\xa0"


@dataclass(frozen=True, slots=True)
class Catalog:
    products: dict[str, str]
    """skuId → product display name, e.g. 'Office 365 E3'."""
    plans: dict[str, str]
    """servicePlanId → friendly plan name, e.g. 'Microsoft Teams'."""

    def product(self, sku_id: str, fallback: str) -> str:
        return self.products.get(sku_id.lower(), fallback)

    def plan(self, plan_id: str, fallback: str) -> str:
        return self.plans.get(plan_id.lower(), fallback)

    def names_for(self, tenant: Tenant) -> tuple[dict[str, str], dict[str, str]]:
        """Friendly product and plan names for a tenant's SKUs, as `evaluate` takes them."""
        products = {s: self.product(s, tenant.skus[s].part_number) for s in tenant.skus}
        plans = {p.id: self.plan(p.id, p.name) for s in tenant.skus.values() for p in s.plans}
        return products, plans


def _clean(value: str | None) -> str:
    return (value or "").strip(_WHITESPACE).replace("\xa0", " ")


def read_catalog(path: Path = CATALOG_CSV) -> Catalog:
    products: dict[str, str] = {}
    plans: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            sku_id = _clean(row.get("GUID")).lower()
            plan_id = _clean(row.get("Service_Plan_Id")).lower()
            if sku_id:
                products.setdefault(sku_id, _clean(row.get("Product_Display_Name")))
            friendly = _clean(row.get("Service_Plans_Included_Friendly_Names"))
            code = _clean(row.get("Service_Plan_Name"))
            if plan_id and friendly and _better(friendly, plans.get(plan_id), code):
                plans[plan_id] = friendly
    return Catalog(products, plans)


def _better(candidate: str, current: str | None, code: str) -> bool:
    """Some rows repeat the code name or shout in capitals; prefer a real friendly name."""

    def score(name: str) -> int:
        return (name != code) + (not name.isupper())

    return current is None or score(candidate) > score(current)


@cache
def catalog() -> Catalog:
    """The bundled catalog, loaded on first use."""
    return read_catalog()
