"""Writes `shared/data/demo-snapshot.json`: the seed scenario of the group-based licensing article.

Office 365 E3 limited to the 13 plans of the article, EMS E3 and Office 365 E1; the groups
Licensing_Office365_E3_Base (all but Yammer, Sway, StaffHub and Teams), _E3_Teams (Teams only)
and _EMS_E3; users who get 9/13, 10/13 and 1/13 plans, and a few users in each error and
finding the core knows. GUIDs of products and plans are Microsoft's (from the catalog); user
and group ids are fixed uuid5 values so the file is stable. Run: python tools/make_demo_snapshot.py
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "shared" / "data" / "demo-snapshot.json"
NS = uuid.UUID("5f0c7d52-1d6e-4a52-9a55-3f8c1b0f7a10")
WHEN = "2026-11-20T08:00:00Z"
SYNC = "2026-11-24T07:30:00Z"

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"
E1 = "18181a46-0d4e-45cd-891e-60aabd171b4e"

E3_PLANS = {
    "EXCHANGE_S_ENTERPRISE": "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72",
    "MCOSTANDARD": "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
    "OFFICESUBSCRIPTION": "43de0ff5-c92c-492b-9116-175376d08c38",
    "SHAREPOINTWAC": "e95bec33-7c88-4a70-8e19-b10bd9d0c014",
    "YAMMER_ENTERPRISE": "7547a3fe-08ee-4ccb-b430-5077c5041653",
    "SWAY": "a23b959c-7ce8-4e57-9140-b90eb88a9e97",
    "PROJECTWORKMANAGEMENT": "b737dad2-2f6c-4c65-90e3-ca563267e8b9",
    "Deskless": "8c7d2df8-86f0-4902-b2ed-a0458298f3b3",
    "TEAMS1": "57ff2da0-773e-42df-b2af-ffb7a2317929",
    "STREAM_O365_E3": "9e700747-8b1d-45e5-ab8d-ef187ceec156",
    "FLOW_O365_P2": "76846ad7-7776-4c40-a281-a386362dd1b9",
    "POWERAPPS_O365_P2": "c68f8d98-5534-41c8-bf36-22fa496fa792",
}
EMS_PLANS = {
    "AAD_PREMIUM": "41781fb2-bc02-4b7c-bd55-b576c07bb09d",
    "RMS_S_PREMIUM": "6c57d4b6-3b23-47a5-9bc9-69f17b4947b3",
    "ADALLOM_S_DISCOVERY": "932ad362-64a8-4783-9106-97849a1a30b9",
    "EXCHANGE_S_FOUNDATION": "113feb6c-3fe4-4440-bddc-54d774bf0318",
    "RMS_S_ENTERPRISE": "bea4c11e-220a-4e6d-8eb8-8ea15d019f90",
    "MFA_PREMIUM": "8a256a2b-b617-496d-b51b-e76466e88db0",
    "INTUNE_A": "c1ec4a95-1f05-45b3-a911-aa3fa01094f5",
}
E1_PLANS = {
    "EXCHANGE_S_STANDARD": "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    "SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1",
    "SHAREPOINTWAC": "e95bec33-7c88-4a70-8e19-b10bd9d0c014",
    "MCOSTANDARD": "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
    "TEAMS1": "57ff2da0-773e-42df-b2af-ffb7a2317929",
    "YAMMER_ENTERPRISE": "7547a3fe-08ee-4ccb-b430-5077c5041653",
}
BASE_OFF = [E3_PLANS[p] for p in ("YAMMER_ENTERPRISE", "SWAY", "Deskless", "TEAMS1")]
TEAMS_OFF = [pid for name, pid in E3_PLANS.items() if name != "TEAMS1"]


def oid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def sku(sku_id: str, part: str, plans: dict[str, str], enabled: int, **units: int) -> dict:
    return {
        "accountName": "Contoso",
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "consumedUnits": 0,
        "skuId": sku_id,
        "skuPartNumber": part,
        "prepaidUnits": {
            "enabled": enabled,
            "warning": units.get("warning", 0),
            "suspended": units.get("suspended", 0),
            "lockedOut": units.get("lockedOut", 0),
        },
        "servicePlans": [
            {
                "servicePlanId": pid,
                "servicePlanName": name,
                "provisioningStatus": "Success",
                "appliesTo": "User",
            }
            for name, pid in plans.items()
        ],
    }


def group(name: str, licenses: list[tuple[str, list[str]]], synced: bool, **extra: object) -> dict:
    return {
        "id": oid("group:" + name),
        "displayName": name,
        "mailEnabled": False,
        "securityEnabled": True,
        "groupTypes": [],
        "onPremisesSyncEnabled": True if synced else None,
        "assignedLicenses": [{"skuId": s, "disabledPlans": d} for s, d in licenses],
        "licenseProcessingState": {"state": "ProcessingComplete"} if licenses else None,
        "members": [],
        **extra,
    }


def main() -> None:
    skus = [
        sku(E3, "ENTERPRISEPACK", E3_PLANS, enabled=25),
        sku(EMS, "EMS", EMS_PLANS, enabled=5),
        sku(E1, "STANDARDPACK", E1_PLANS, enabled=2, warning=3),
    ]
    base = group("Licensing_Office365_E3_Base", [(E3, BASE_OFF)], synced=True)
    teams = group("Licensing_Office365_E3_Teams", [(E3, TEAMS_OFF)], synced=True)
    ems = group("Licensing_Office365_EMS_E3", [(EMS, [])], synced=False)
    sales = group("Sales_Team", [], synced=True)
    groups = {g["displayName"]: g for g in (base, teams, ems, sales)}
    users: list[dict] = []

    def user(
        name: str,
        *,
        location: str | None = "US",
        enabled: bool = True,
        member_of=(),
        states=(),
        synced: bool = True,
    ) -> dict:
        upn = name.lower().replace(" ", ".") + "@contoso.com"
        entry = {
            "id": oid("user:" + name),
            "userPrincipalName": upn,
            "displayName": name,
            "mail": upn,
            "accountEnabled": enabled,
            "usageLocation": location,
            "userType": "Member",
            "onPremisesSyncEnabled": True if synced else None,
            "assignedLicenses": [],
            "licenseAssignmentStates": [],
        }
        for group_name in member_of:
            groups[group_name]["members"].append(
                {"@odata.type": "#microsoft.graph.user", "id": entry["id"]}
            )
        held: dict[str, set[str]] = {}
        for sku_id, via, disabled, state, error in states:
            entry["licenseAssignmentStates"].append(
                {
                    "skuId": sku_id,
                    "assignedByGroup": groups[via]["id"] if via else None,
                    "disabledPlans": disabled,
                    "state": state,
                    "error": error,
                    "lastUpdatedDateTime": WHEN,
                }
            )
            if state in ("Active", "ActiveWithError"):
                plans = {s["skuId"]: s for s in skus}[sku_id]["servicePlans"]
                enabled_plans = {p["servicePlanId"] for p in plans} - set(disabled)
                held.setdefault(sku_id, set()).update(enabled_plans)
        for sku_id, enabled_plans in held.items():
            plans = {s["skuId"]: s for s in skus}[sku_id]["servicePlans"]
            off = [p["servicePlanId"] for p in plans if p["servicePlanId"] not in enabled_plans]
            entry["assignedLicenses"].append({"skuId": sku_id, "disabledPlans": off})
        users.append(entry)
        return entry

    b, t, m = (
        "Licensing_Office365_E3_Base",
        "Licensing_Office365_E3_Teams",
        "Licensing_Office365_EMS_E3",
    )
    ok, err, warn = "Active", "Error", "ActiveWithError"
    # The working assignment through each licensing group, which most users hold.
    via_base, via_teams, via_ems = (
        (E3, b, BASE_OFF, ok, None),
        (E3, t, TEAMS_OFF, ok, None),
        (EMS, m, [], ok, None),
    )
    # The article's three users: 9/13, 10/13 and 1/13 plans.
    user("Alannah Shaw", member_of=[b, m], states=[via_base, via_ems])
    user("Dave Bedrat", member_of=[b, t], states=[via_base, via_teams])
    user("David Abbott", member_of=[t], states=[via_teams])
    # Healthy EMS holders use the rest of the 5 EMS seats.
    for name in ("Allan Deyoung", "Christie Cline", "Enrico Cattaneo", "Henrietta Mueller"):
        user(name, member_of=[b, m], states=[via_base, via_ems])
    # CountViolation: EMS is full (5 seats), two more members are waiting.
    for name in ("Irvin Sayers", "Joni Sherman"):
        user(name, member_of=[b, m], states=[via_base, (EMS, m, [], err, "CountViolation")])
    # Migration from direct to group: a covered direct assignment, and one with plans only it grants.
    user("Megan Bowen", member_of=[b], states=[(E3, None, BASE_OFF, ok, None), via_base])
    user("Lee Gu", member_of=[b], states=[(E3, None, [], ok, None), via_base])
    user(
        "Lidia Holloway",
        member_of=[b],
        states=[(E3, None, BASE_OFF, ok, None), (E3, b, BASE_OFF, err, "Other")],
    )
    # MutuallyExclusiveViolation: a direct Office 365 E1 (subscription in warning) conflicts with group E3.
    user(
        "Isaiah Langer",
        member_of=[b],
        states=[(E1, None, [], ok, None), (E3, b, BASE_OFF, err, "MutuallyExclusiveViolation")],
    )
    # DependencyViolation: left the Teams group, Entra kept the license because something depends on it.
    user(
        "Johanna Lorenz",
        member_of=[b],
        states=[via_base, (E3, t, TEAMS_OFF, warn, "DependencyViolation")],
    )
    # ProhibitedInUsageLocationViolation, UniquenessViolation and Other ("Others" in old spelling).
    user(
        "Pradeep Gupta",
        location="CU",
        member_of=[m],
        states=[(EMS, m, [], err, "ProhibitedInUsageLocationViolation")],
    )
    user("Nestor Wilke", member_of=[b], states=[(E3, b, BASE_OFF, err, "UniquenessViolation")])
    user("Grady Archie", member_of=[t], states=[(E3, t, TEAMS_OFF, err, "Others")])
    # Pending (member, no state yet), stale (state from a group the user left), plan mismatch.
    user("Adele Vance", member_of=[b])
    user("Alex Wilber", states=[via_base])
    user("Diego Siciliani", member_of=[b], states=[(E3, b, BASE_OFF[:3], ok, None)])
    # No usage location (inherits the tenant's country), and a disabled account holding a seat.
    user("Patti Fernandez", location=None, member_of=[b], states=[via_base], synced=False)
    user("Miriam Graham", enabled=False, member_of=[b], states=[via_base])
    # Nested group: Sales_Team is a member of the Base group, so its members get nothing from it.
    user("Lynne Robbins", member_of=["Sales_Team"])
    base["members"].append({"@odata.type": "#microsoft.graph.group", "id": sales["id"]})
    # A soft-deleted user still listed as a member (Graph keeps memberships for 30 days).
    teams["members"].append({"@odata.type": "#microsoft.graph.user", "id": oid("user:deleted")})

    for s in skus:
        s["consumedUnits"] = sum(
            1 for u in users for a in u["assignedLicenses"] if a["skuId"] == s["skuId"]
        )
    snapshot = {
        "organization": [
            {
                "id": oid("organization"),
                "displayName": "Contoso",
                "countryLetterCode": "US",
                "onPremisesSyncEnabled": True,
                "onPremisesLastSyncDateTime": SYNC,
                "verifiedDomains": [{"name": "contoso.com", "isDefault": True}],
            }
        ],
        "subscribedSkus": skus,
        "groups": list(groups.values()),
        "users": users,
    }
    OUT.write_text(json.dumps(snapshot, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(users)} users)")


if __name__ == "__main__":
    main()
