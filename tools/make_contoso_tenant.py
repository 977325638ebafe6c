"""Writes `graphsim/tenants/contoso.json`: the demo snapshot as a graphsim tenant.

The directory objects are `shared/data/demo-snapshot.json` unchanged (regenerate that first
with `python tools/make_demo_snapshot.py`), so `license-guard evaluate` and the live demo
(`make demo`) tell the same story. Added on top:

* an ``x-graphsim`` section with the facts Entra enforces but Graph does not expose, chosen
  so the snapshot's errors are what graphsim itself would compute: the tenant's country (US),
  EMS prohibited in Cuba (Pradeep Gupta's ProhibitedInUsageLocationViolation), a proxy-address
  clash for Nestor Wilke (UniquenessViolation), Exchange Online Plan 1 (E1) and Plan 2 (E3)
  mutually exclusive (Isaiah Langer), and the synced groups (Licensing_Office365_E3_Base,
  _E3_Teams, Sales_Team), whose memberships change only through a sync cycle;
* three groups nobody licenses, as every tenant has many: a Microsoft 365 (Teams) group, a
  distribution list and a dynamic security group;
* a directory role and an administrative unit with members, which `/users/{id}/memberOf`
  lists beside the groups (each with its own `@odata.type`), as Graph does.

Run: python tools/make_contoso_tenant.py
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "shared" / "data" / "demo-snapshot.json"
OUT = ROOT / "graphsim" / "tenants" / "contoso.json"
NS = uuid.UUID("5f0c7d52-1d6e-4a52-9a55-3f8c1b0f7a10")  # as tools/make_demo_snapshot.py
USER_TYPE = "#microsoft.graph.user"

EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"
EXCHANGE_S_STANDARD = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"  # Office 365 E1
EXCHANGE_S_ENTERPRISE = "efb87545-963c-4e0d-99df-69c6916d9eb0"  # Office 365 E3


def oid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def _by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [i for i in items if i.get("displayName") == name]
    if len(found) != 1:
        raise SystemExit(f"{SNAPSHOT.name}: expected one object named {name!r}")
    return found[0]


def _members(users: list[dict[str, Any]], *names: str) -> list[dict[str, str]]:
    return [{"@odata.type": USER_TYPE, "id": _by_name(users, n)["id"]} for n in names]


def unlicensed_group(name: str, members: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    group: dict[str, Any] = {
        "id": oid("group:" + name),
        "displayName": name,
        "mailEnabled": False,
        "securityEnabled": True,
        "groupTypes": [],
        "onPremisesSyncEnabled": None,
        "assignedLicenses": [],
        "licenseProcessingState": None,
        "members": members,
    }
    group.update(extra)
    return group


def build(snapshot: dict[str, Any]) -> dict[str, Any]:
    tenant = copy.deepcopy(snapshot)
    users, groups = tenant["users"], tenant["groups"]
    synced = [g["id"] for g in groups if g.get("onPremisesSyncEnabled")]
    prohibited = sorted(
        {
            str(u["usageLocation"])
            for u in users
            for s in u.get("licenseAssignmentStates") or ()
            if s.get("skuId") == EMS and s.get("error") == "ProhibitedInUsageLocationViolation"
        }
    )
    duplicates = sorted(
        u["id"]
        for u in users
        if any(
            s.get("error") == "UniquenessViolation" for s in u.get("licenseAssignmentStates") or ()
        )
    )
    groups.extend(
        [
            unlicensed_group(
                "Contoso Marketing Team",
                _members(users, "Alannah Shaw", "Megan Bowen", "Adele Vance"),
                mailEnabled=True,
                securityEnabled=False,
                groupTypes=["Unified"],
                mailNickname="marketing",
                visibility="Private",
                resourceProvisioningOptions=["Team"],
            ),
            unlicensed_group(
                "All Sales (distribution list)",
                _members(users, "Lynne Robbins", "Diego Siciliani"),
                mailEnabled=True,
                securityEnabled=False,
                mailNickname="allsales",
            ),
            unlicensed_group(
                "Dynamic - Users in Cuba",
                _members(users, "Pradeep Gupta"),
                groupTypes=["DynamicMembership"],
                membershipRule='(user.usageLocation -eq "CU")',
                membershipRuleProcessingState="On",
            ),
        ]
    )
    tenant["directoryRoles"] = [
        {
            "id": oid("directoryRole:License Administrator"),
            "displayName": "License Administrator",
            "description": "Can manage product licenses on users and groups.",
            "roleTemplateId": "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
            "members": [_by_name(users, "Megan Bowen")["id"]],
        }
    ]
    tenant["administrativeUnits"] = [
        {
            "id": oid("administrativeUnit:Sales"),
            "displayName": "Sales",
            "description": "The sales department's users.",
            "members": [_by_name(users, n)["id"] for n in ("Diego Siciliani", "Lynne Robbins")],
        }
    ]
    tenant["x-graphsim"] = {
        "tenantCountry": tenant["organization"][0].get("countryLetterCode") or "US",
        "prohibitedUsageLocations": {EMS: prohibited},
        "mutuallyExclusivePlans": [[EXCHANGE_S_STANDARD, EXCHANGE_S_ENTERPRISE]],
        "duplicateProxyUsers": duplicates,
        "onPremisesSyncedGroups": synced,
        "generator": "tools/make_contoso_tenant.py from shared/data/demo-snapshot.json",
    }
    return tenant


def main() -> None:
    tenant = build(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(tenant, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(tenant['users'])} users, {len(tenant['groups'])} groups)")


if __name__ == "__main__":
    main()
