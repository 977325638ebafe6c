"""Each id tests/demo_tenant.py names is in the demo snapshot, as what its name says."""

from __future__ import annotations

import json

from tests import demo_tenant as demo

NAMED = {
    demo.E3_BASE: "Licensing_Office365_E3_Base",
    demo.E3_TEAMS: "Licensing_Office365_E3_Teams",
    demo.EMS_E3: "Licensing_Office365_EMS_E3",
    demo.SALES_TEAM: "Sales_Team",
    demo.ENTERPRISEPACK: "ENTERPRISEPACK",
    demo.EMS: "EMS",
    demo.EXCHANGE_S_ENTERPRISE: "ENTERPRISEPACK/EXCHANGE_S_ENTERPRISE",
    demo.ADELE: "Adele Vance",
    demo.ALANNAH: "Alannah Shaw",
    demo.ALEX: "Alex Wilber",
    demo.DIEGO: "Diego Siciliani",
    demo.GRADY: "Grady Archie",
    demo.IRVIN: "Irvin Sayers",
    demo.JONI: "Joni Sherman",
    demo.LYNNE: "Lynne Robbins",
    demo.MEGAN: "Megan Bowen",
    demo.NESTOR: "Nestor Wilke",
}
"""Each id, by the name the snapshot gives it: a group's displayName, a SKU's skuPartNumber, a
plan's SKU/servicePlanName, a user's displayName."""


def test_each_id_is_in_the_snapshot_under_its_name() -> None:
    snapshot = json.loads(demo.DEMO.read_text(encoding="utf-8"))
    names = {g["id"]: g["displayName"] for g in snapshot["groups"]}
    names |= {u["id"]: u["displayName"] for u in snapshot["users"]}
    for sku in snapshot["subscribedSkus"]:
        part = sku["skuPartNumber"]
        names[sku["skuId"]] = part
        names |= {p["servicePlanId"]: f"{part}/{p['servicePlanName']}" for p in sku["servicePlans"]}

    assert {id_: names.get(id_) for id_ in NAMED} == NAMED
