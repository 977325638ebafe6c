"""Microsoft's product/service plan catalog as graphsim's synthetic tenants use it: real SKUs
and their service plans from ``graphsim/data/product-service-plans.csv`` (a copy of
``shared/data``'s file: keyed on GUIDs, values trimmed of whitespace and NBSP, duplicate
pairs dropped), and the choice of SKUs a generated tenant buys.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import random
from pathlib import Path

CATALOG_PATH = Path(__file__).parent / "data" / "product-service-plans.csv"

# Roughly what large tenants buy, most common first; the first ones carry the scenarios.
PREFERRED_SKUS: tuple[str, ...] = (
    "SPE_E3",
    "ENTERPRISEPACK",
    "EMS",
    "STANDARDPACK",
    "MCOEV",
    "MCOPSTN1",
    "POWER_BI_PRO",
    "VISIOCLIENT",
    "SPE_E5",
    "ENTERPRISEPREMIUM",
    "EMSPREMIUM",
    "PROJECTPROFESSIONAL",
    "MCOMEETADV",
    "SPB",
    "AAD_PREMIUM_P2",
    "EXCHANGESTANDARD",
    "SPE_F1",
    "DESKLESSPACK",
    "O365_BUSINESS_PREMIUM",
    "POWER_BI_STANDARD",
    "FLOW_FREE",
    "TEAMS_EXPLORATORY",
    "WIN10_VDA_E3",
    "ATP_ENTERPRISE",
    "AAD_PREMIUM",
    "INTUNE_A",
    "PROJECTPREMIUM",
    "Microsoft_Teams_Premium",
    "M365_F1",
    "Microsoft_365_Copilot",
    "EXCHANGEENTERPRISE",
    "POWERAPPS_PER_USER",
    "FLOW_PER_USER",
    "VISIO_PLAN1_DEPT",
    "PROJECT_P1",
    "IDENTITY_THREAT_PROTECTION",
)


@dataclasses.dataclass(frozen=True)
class CatalogSku:
    """One product of Microsoft's catalog with its service plans (id, name), deduplicated."""

    sku_id: str
    part_number: str
    display_name: str
    plans: tuple[tuple[str, str], ...]


def _clean(value: str) -> str:
    """The catalog pads values with spaces and NBSP (data/README): strip both."""
    return value.replace("\u00a0", " ").strip()


@functools.cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogSku]:
    """SKU GUID -> product; the first name seen wins for SKUs and plans listed twice."""
    skus: dict[str, tuple[str, str, dict[str, str]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            sku_id = _clean(row["GUID"]).lower()
            plan_id = _clean(row["Service_Plan_Id"]).lower()
            entry = skus.setdefault(
                sku_id, (_clean(row["String_Id"]), _clean(row["Product_Display_Name"]), {})
            )
            entry[2].setdefault(plan_id, _clean(row["Service_Plan_Name"]))
    return {
        sku_id: CatalogSku(sku_id, part, name, tuple(plans.items()))
        for sku_id, (part, name, plans) in skus.items()
    }


def choose_skus(count: int, rng: random.Random) -> list[CatalogSku]:
    """The preferred common SKUs first, then random others from the catalog."""
    catalog = load_catalog()
    by_part: dict[str, CatalogSku] = {}
    for sku in sorted(catalog.values(), key=lambda s: s.sku_id):
        by_part.setdefault(sku.part_number, sku)
    chosen = [by_part[p] for p in PREFERRED_SKUS if p in by_part][:count]
    taken = {s.sku_id for s in chosen}
    rest = sorted(
        (s for s in by_part.values() if s.sku_id not in taken and s.plans),
        key=lambda s: s.part_number,
    )
    chosen.extend(rng.sample(rest, max(0, min(count - len(chosen), len(rest)))))
    return chosen
