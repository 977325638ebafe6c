"""Each id tests/demo_tenant.py names is in the demo snapshot, as what its name says."""

from __future__ import annotations

import json

from tests import demo_tenant as demo


def test_the_ids_are_the_demo_tenants_groups_skus_plan_and_users() -> None:
    snapshot = json.loads(demo.DEMO.read_text(encoding="utf-8"))
    groups = {g["id"]: g["displayName"] for g in snapshot["groups"]}
    skus = {s["skuId"]: s["skuPartNumber"] for s in snapshot["subscribedSkus"]}
    plans = {
        p["servicePlanId"]: (s["skuPartNumber"], p["servicePlanName"])
        for s in snapshot["subscribedSkus"]
        for p in s["servicePlans"]
    }
    users = {u["id"]: u["displayName"] for u in snapshot["users"]}

    assert groups[demo.E3_BASE] == "Licensing_Office365_E3_Base"
    assert groups[demo.E3_TEAMS] == "Licensing_Office365_E3_Teams"
    assert groups[demo.EMS_E3] == "Licensing_Office365_EMS_E3"
    assert groups[demo.SALES_TEAM] == "Sales_Team"
    assert skus[demo.ENTERPRISEPACK] == "ENTERPRISEPACK"
    assert skus[demo.EMS] == "EMS"
    assert plans[demo.EXCHANGE_S_ENTERPRISE] == ("ENTERPRISEPACK", "EXCHANGE_S_ENTERPRISE")
    assert users[demo.ADELE] == "Adele Vance"
    assert users[demo.ALANNAH] == "Alannah Shaw"
    assert users[demo.ALEX] == "Alex Wilber"
    assert users[demo.DIEGO] == "Diego Siciliani"
    assert users[demo.GRADY] == "Grady Archie"
    assert users[demo.IRVIN] == "Irvin Sayers"
    assert users[demo.JONI] == "Joni Sherman"
    assert users[demo.LYNNE] == "Lynne Robbins"
    assert users[demo.MEGAN] == "Megan Bowen"
    assert users[demo.NESTOR] == "Nestor Wilke"
