"""The generator behind :mod:`graphsim.synthetic`: builds users, licensed and unlicensed
groups, subscribed SKUs and the tenant's licensing rules from one random stream, so the same
parameters always give the same tenant. The scenario constants say which SKUs carry which
licensing error (see the shape list in :mod:`graphsim.synthetic`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .clock import iso
from .memberships import GROUP_TYPE, USER_TYPE
from .product_catalog import CatalogSku, choose_skus

Json = dict[str, Any]

GENERATED_AT = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
DOMAIN = "contoso.example"
TENANT_COUNTRY = "US"
BARRED_COUNTRY = "CN"  # Microsoft 365 in China is a separate cloud: global SKUs are barred

BIG_SKU = "SPE_E3"
E1_SKU = "STANDARDPACK"
PHONE_SKU = "MCOEV"
CALLING_SKU = "MCOPSTN1"
TIGHT_SKUS = ("POWER_BI_PRO", "VISIOCLIENT")
DIRECT_SKUS = ("ENTERPRISEPACK", "EMS", "EXCHANGESTANDARD", "AAD_PREMIUM_P2", "SPE_E3")

COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.55),
    ("GB", 0.10),
    ("DE", 0.08),
    ("IN", 0.07),
    ("FR", 0.05),
    ("CA", 0.04),
    ("JP", 0.03),
    (BARRED_COUNTRY, 0.03),
    ("BR", 0.02),
    ("AU", 0.02),
)
DEPARTMENTS = (
    "Sales",
    "Engineering",
    "Support",
    "Finance",
    "Marketing",
    "Operations",
    "HR",
    "Legal",
    "Research",
    "Retail",
)


def spread(total: float, weights: list[float], cap: float) -> list[float]:
    """Split ``total`` in proportion to ``weights``, no part above ``cap`` (excess re-spread)."""
    shares = [0.0] * len(weights)
    free = set(range(len(weights)))
    remaining = total
    while free and remaining > 1e-9:
        weight = sum(weights[i] for i in free) or 1.0
        capped = {i for i in free if shares[i] + remaining * weights[i] / weight >= cap}
        if not capped:
            for i in free:
                shares[i] += remaining * weights[i] / weight
            break
        for i in sorted(capped):
            remaining -= cap - shares[i]
            shares[i] = cap
        free -= capped
    return shares


class TenantBuilder:
    """Holds the generator's random stream and the objects built so far."""

    def __init__(self, users: int, groups: int, skus: int, seed: int, unlicensed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.n_users = users
        self.n_groups = groups
        self.n_skus = skus
        self.seed = seed
        self.n_unlicensed = unlicensed
        self.tenant_id = self.guid()
        self.catalog = choose_skus(skus, self.rng)
        self.by_part = {s.part_number: s for s in self.catalog}
        self.users: list[Json] = []
        self.groups: list[Json] = []
        self.synced_groups: list[str] = []

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def sample(self, k: int, population: Sequence[int] | None = None) -> list[int]:
        """``k`` distinct user indexes (sorted, for stable member lists)."""
        pool: Sequence[int] = range(self.n_users) if population is None else population
        return sorted(self.rng.sample(pool, min(max(k, 0), len(pool))))

    # ------------------------------------------------------------------ users
    def build_users(self) -> None:
        rng = self.rng
        codes = [c for c, _ in COUNTRIES]
        weights = [w for _, w in COUNTRIES]
        width = len(str(self.n_users))
        for n in range(1, self.n_users + 1):
            roll = rng.random()
            location = None if roll < 0.01 else rng.choices(codes, weights)[0]
            upn = f"user{n}@{DOMAIN}"
            self.users.append(
                {
                    "id": self.guid(),
                    "userPrincipalName": upn,
                    "displayName": f"User {n:0{width}d}",
                    "mail": upn,
                    "department": DEPARTMENTS[rng.randrange(len(DEPARTMENTS))],
                    "usageLocation": location,
                    "accountEnabled": rng.random() >= 0.03,
                    "onPremisesSyncEnabled": rng.random() < 0.7 or None,
                    "assignedLicenses": [],
                    "licenseAssignmentStates": [],
                    "assignedPlans": [],
                }
            )

    def add_direct_assignments(self) -> None:
        """~5% of users keep a direct assignment (migration leftovers, §4.4)."""
        pool = [self.by_part[p] for p in DIRECT_SKUS if p in self.by_part] or [
            s for s in self.catalog if s.part_number not in TIGHT_SKUS
        ][:1]
        if not pool:
            return
        stamp = iso(GENERATED_AT - timedelta(days=400))
        for i in self.sample(round(self.n_users * 0.05)):
            user = self.users[i]
            if user["usageLocation"] == BARRED_COUNTRY:
                continue  # assignLicense would have refused it
            sku = pool[self.rng.randrange(len(pool))]
            user["licenseAssignmentStates"].append(
                {
                    "assignedByGroup": None,
                    "disabledPlans": [],
                    "error": None,
                    "lastUpdatedDateTime": stamp,
                    "skuId": sku.sku_id,
                    "state": "Active",
                }
            )

    # ------------------------------------------------------------------ groups
    def group(self, name: str, members: list[int], licenses: list[Json], **extra: Any) -> Json:
        created = GENERATED_AT - timedelta(days=self.rng.randrange(30, 2000))
        group: Json = {
            "id": self.guid(),
            "displayName": name,
            "description": extra.pop("description", f"{name} (synthetic)"),
            "mailEnabled": False,
            "mailNickname": name.replace(" ", "").lower(),
            "securityEnabled": True,
            "groupTypes": [],
            "createdDateTime": iso(created),
            "onPremisesSyncEnabled": None,
            "assignedLicenses": licenses,
            "licenseProcessingState": {"state": "ProcessingComplete"} if licenses else None,
            "members": [{"@odata.type": USER_TYPE, "id": self.users[i]["id"]} for i in members],
        }
        group.update(extra)
        self.groups.append(group)
        return group

    def license(
        self, sku: CatalogSku, disable: int = 0, keep: frozenset[str] = frozenset()
    ) -> Json:
        """An assignedLicense, optionally with ``disable`` random plans turned off."""
        candidates = [pid for pid, _ in sku.plans if pid not in keep]
        off = sorted(self.rng.sample(candidates, min(disable, max(len(candidates) - 1, 0))))
        return {"disabledPlans": off, "skuId": sku.sku_id}

    def build_licensed_groups(self, keep: frozenset[str]) -> dict[str, list[int]]:
        """Special scenario groups first, then the rest sized to ~3 groups per user."""
        n, rng = self.n_users, self.rng
        special: list[tuple[str, str, float]] = [
            (BIG_SKU, "AllStaff", 0.25),
            (E1_SKU, "Frontline", 0.04),
            (PHONE_SKU, "TeamsPhone", 0.06),
            (CALLING_SKU, "CallingPlan", 0.045),
            (TIGHT_SKUS[0], "Analysts", 0.12),
            (TIGHT_SKUS[1], "Engineering", 0.05),
        ]
        members_by_sku: dict[str, list[int]] = {}
        planned: list[tuple[CatalogSku, str, list[int]]] = []
        phone_members: list[int] = []
        for part, purpose, share in special:
            if len(planned) >= self.n_groups or part not in self.by_part:
                continue
            if part == CALLING_SKU and phone_members:  # calling users mostly have Teams Phone
                inside = self.sample(round(n * share * 0.8), phone_members)
                members = sorted({*inside, *self.sample(round(n * share * 0.2))})
            else:
                members = self.sample(round(n * share))
            if part == PHONE_SKU:
                phone_members = members
            planned.append((self.by_part[part], purpose, members))
        budget = max(0, round(n * 3) - sum(len(m) for _, _, m in planned))
        # SKUs with SharePoint Plan 1 would spread the E1/E3 conflict far beyond "a few %".
        pool = [
            s
            for s in self.catalog
            if s.part_number not in {E1_SKU, PHONE_SKU, CALLING_SKU, *TIGHT_SKUS}
            and not any(name == "SHAREPOINTSTANDARD" for _, name in s.plans)
        ] or self.catalog
        weights = [1 / (rank + 1) ** 0.7 for rank in range(len(pool))]
        left = self.n_groups - len(planned)
        shares = spread(budget / n, [rng.paretovariate(1.5) for _ in range(left)], cap=0.2)
        for k in range(left):
            members = self.sample(max(1, round(n * shares[k])))
            planned.append((rng.choices(pool, weights)[0], f"{DEPARTMENTS[k % 10]}-{k}", members))

        for idx, (sku, purpose, members) in enumerate(planned):
            licenses = [self.license(sku, self._disable_count(idx, purpose), keep)]
            if idx >= 6 and rng.random() < 0.3:  # some groups bundle two products
                extra = pool[rng.randrange(len(pool))]
                if extra.sku_id != sku.sku_id:
                    licenses.append(self.license(extra, self._disable_count(idx, ""), keep))
            group = self.group(f"LIC-{sku.part_number}-{purpose}", members, licenses)
            if idx % 3 == 0:
                group["onPremisesSyncEnabled"] = True
                self.synced_groups.append(group["id"])
            for lic in licenses:
                members_by_sku.setdefault(lic["skuId"], []).extend(members)
        return members_by_sku

    def _disable_count(self, idx: int, purpose: str) -> int:
        if purpose == "Frontline":
            return 2
        return self.rng.randint(1, 4) if idx >= 6 and self.rng.random() < 0.3 else 0

    def nest_some_groups(self, licensed: int) -> None:
        """A few licensed groups get a nested group member, which licenses nobody (§4.1)."""
        if licensed < 2:
            return
        for k in range(min(5, licensed - 1)):
            parent = self.groups[(k * 7 + 1) % licensed]
            child = self.groups[(k * 11 + 2) % licensed]
            if parent is not child:
                parent["members"].append({"@odata.type": GROUP_TYPE, "id": child["id"]})

    def build_unlicensed_groups(self) -> None:
        """Teams, distribution, dynamic and plain security groups: no licenses."""
        by_dept: dict[str, list[int]] = {}
        for i, user in enumerate(self.users):
            by_dept.setdefault(user["department"], []).append(i)
        for k in range(self.n_unlicensed):
            kind = k % 4
            small = self.sample(round(self.n_users * self.rng.uniform(0.002, 0.02)))
            if kind == 0:
                self.group(
                    f"Team {k}",
                    small,
                    [],
                    mailEnabled=True,
                    securityEnabled=False,
                    groupTypes=["Unified"],
                    visibility="Private",
                )
            elif kind == 1:
                self.group(f"DL {k}", small, [], mailEnabled=True, securityEnabled=False)
            elif kind == 2:
                dept = DEPARTMENTS[k % len(DEPARTMENTS)]
                self.group(
                    f"Dynamic {dept} {k}",
                    by_dept.get(dept, []),
                    [],
                    groupTypes=["DynamicMembership"],
                    membershipRule=f'(user.department -eq "{dept}")',
                    membershipRuleProcessingState="On",
                )
            else:
                self.group(f"SG {k}", small, [])

    # ------------------------------------------------------------------ SKUs
    def subscribed_skus(self, members_by_sku: dict[str, list[int]]) -> list[Json]:
        """Seats: plenty everywhere except the tight SKUs, bought ~20% short of demand."""
        direct: dict[str, int] = {}
        for user in self.users:
            for entry in user["licenseAssignmentStates"]:
                direct[entry["skuId"]] = direct.get(entry["skuId"], 0) + 1
        tight = {self.by_part[p].sku_id for p in TIGHT_SKUS if p in self.by_part}
        out = []
        for sku in self.catalog:
            members = members_by_sku.get(sku.sku_id, [])
            if sku.sku_id in tight:
                seats = int(len(set(members)) * 0.8)
            else:
                demand = len(members) + direct.get(sku.sku_id, 0)
                seats = (int(demand * 1.05) // 25 + 1) * 25
            out.append(
                {
                    "accountId": self.tenant_id,
                    "accountName": "contoso",
                    "appliesTo": "User",
                    "capabilityStatus": "Enabled",
                    "consumedUnits": 0,
                    "id": f"{self.tenant_id}_{sku.sku_id}",
                    "prepaidUnits": {
                        "enabled": seats,
                        "lockedOut": 0,
                        "suspended": 0,
                        "warning": 0,
                    },
                    "servicePlans": [
                        {
                            "appliesTo": "User",
                            "provisioningStatus": "Success",
                            "servicePlanId": pid,
                            "servicePlanName": name,
                        }
                        for pid, name in sku.plans
                    ],
                    "skuId": sku.sku_id,
                    "skuPartNumber": sku.part_number,
                    "subscriptionIds": [self.guid()],
                }
            )
        return out

    def plan_id(self, part: str, plan_name: str) -> str | None:
        sku = self.by_part.get(part)
        if sku is None:
            return None
        return next((pid for pid, name in sku.plans if name == plan_name), None)

    def rules_config(self) -> Json:
        """x-graphsim rules; only those whose SKUs were chosen."""
        mutually_exclusive = []
        spo1 = self.plan_id(E1_SKU, "SHAREPOINTSTANDARD")
        spo2 = self.plan_id(BIG_SKU, "SHAREPOINTENTERPRISE") or self.plan_id(
            "ENTERPRISEPACK", "SHAREPOINTENTERPRISE"
        )
        if spo1 and spo2:
            mutually_exclusive.append([spo1, spo2])
        dependencies: dict[str, list[str]] = {}
        pstn = self.plan_id(CALLING_SKU, "MCOPSTN1")
        phone = self.plan_id(PHONE_SKU, "MCOEV")
        if pstn and phone:
            dependencies[pstn] = [phone]
        audio = self.plan_id("MCOMEETADV", "MCOMEETADV")
        skype = self.plan_id(E1_SKU, "MCOSTANDARD") or self.plan_id(BIG_SKU, "MCOSTANDARD")
        if audio and skype:
            dependencies[audio] = [skype]  # Audio Conferencing needs Skype/Teams (§4.3)
        return {
            "tenantCountry": TENANT_COUNTRY,
            "prohibitedUsageLocations": {s.sku_id: [BARRED_COUNTRY] for s in self.catalog},
            "mutuallyExclusivePlans": mutually_exclusive,
            "planDependencies": dependencies,
        }
