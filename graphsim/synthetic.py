"""Deterministic synthetic tenants for graphsim (load and scale tests up to 100k users).

A tenant is a snapshot dict (``subscribedSkus``, ``groups`` with ``members``, ``users``,
``organization``, ``x-graphsim``) whose licensing state was produced by running
:mod:`graphsim.licensing` over every user, so it is internally consistent by construction.
Everything derives from ``random.Random(seed)`` and a fixed clock: the same parameters give
byte-identical JSON. SKUs and their service plans are real, from Microsoft's product/service
plan CSV (``graphsim/data/product-service-plans.csv``, a copy of ``shared/data``'s file: keyed
on GUIDs, values trimmed of whitespace and NBSP, duplicate pairs dropped).

Shape of a tenant (fractions of users, scaled to any size):

* one licensed group with 25% of users (Microsoft 365 E3 "AllStaff"), about three licensed
  groups per user on average, some groups with disabled plans, a few nested group members
  (which get nothing), and ``unlicensed_groups`` Teams/distribution/dynamic/security groups;
* ~1% of users without usageLocation, ~3% disabled accounts, ~5% with a direct assignment;
* a few % of users in each licensing error: CountViolation (two SKUs bought short),
  ProhibitedInUsageLocationViolation (users in CN; global SKUs are barred there),
  MutuallyExclusiveViolation (SharePoint Plan 1 vs Plan 2, the classic E1/E3 example,
  graph-facts §4.3), UniquenessViolation (``duplicateProxyUsers``) and DependencyViolation
  (a Calling Plan depends on Teams Phone; some users are removed from the Teams Phone group
  after the first pass, which Entra blocks, graph-facts §4.2).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import random
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from graphsim import clock, license_rules, licensing, memberships

Json = dict[str, Any]

CATALOG_PATH = Path(__file__).parent / "data" / "product-service-plans.csv"
GENERATED_AT = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
DOMAIN = "contoso.example"
TENANT_COUNTRY = "US"
BARRED_COUNTRY = "CN"  # Microsoft 365 in China is a separate cloud: global SKUs are barred

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

SPEC_KEYS = {"users": 100000, "groups": 60, "skus": 30, "seed": 7, "unlicensed_groups": 20}


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


def _spread(total: float, weights: list[float], cap: float) -> list[float]:
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


def parse_synthetic_spec(spec: str) -> dict[str, int]:
    """``"users=1000,groups=10"`` -> keyword arguments for :func:`generate_tenant`.

    Unset keys take their defaults; unknown keys and non-integers are errors so a typo in a
    benchmark spec cannot silently generate the wrong tenant.
    """
    params = dict(SPEC_KEYS)
    for item in spec.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in SPEC_KEYS:
            msg = f"bad synthetic spec item {item!r}; keys: {', '.join(SPEC_KEYS)}"
            raise ValueError(msg)
        try:
            number = int(value.strip())
        except ValueError:
            msg = f"synthetic spec {key} must be an integer, got {value!r}"
            raise ValueError(msg) from None
        if number < 0 or (key == "users" and number == 0):
            msg = f"synthetic spec {key} out of range: {number}"
            raise ValueError(msg)
        params[key] = number
    return params


def size_class(users: int) -> str:
    """S < 50 users, M 50-500, L above."""
    if users < 50:
        return "S"
    return "M" if users <= 500 else "L"


class _Builder:
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
        stamp = clock.iso(GENERATED_AT - timedelta(days=400))
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
            "createdDateTime": clock.iso(created),
            "onPremisesSyncEnabled": None,
            "assignedLicenses": licenses,
            "licenseProcessingState": {"state": "ProcessingComplete"} if licenses else None,
            "members": [
                {"@odata.type": memberships.USER_TYPE, "id": self.users[i]["id"]} for i in members
            ],
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
        shares = _spread(budget / n, [rng.paretovariate(1.5) for _ in range(left)], cap=0.2)
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
                parent["members"].append({"@odata.type": memberships.GROUP_TYPE, "id": child["id"]})

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


def generate_tenant(
    users: int = 100000,
    groups: int = 60,
    skus: int = 30,
    seed: int = 7,
    unlicensed_groups: int = 20,
) -> Json:
    """A full, internally consistent tenant snapshot; same arguments, same JSON."""
    with licensing.paused_cyclic_gc():
        return _generate(users, groups, skus, seed, unlicensed_groups)


def _generate(users: int, groups: int, skus: int, seed: int, unlicensed_groups: int) -> Json:
    b = _Builder(users, groups, skus, seed, unlicensed_groups)
    b.build_users()
    b.add_direct_assignments()
    config = b.rules_config()
    keep = frozenset(p for pair in config["mutuallyExclusivePlans"] for p in pair) | {
        p for dep, req in config["planDependencies"].items() for p in (dep, *req)
    }
    members_by_sku = b.build_licensed_groups(keep)
    licensed = len(b.groups)
    b.nest_some_groups(licensed)
    b.build_unlicensed_groups()
    sku_list = b.subscribed_skus(members_by_sku)
    duplicates = [b.users[i]["id"] for i in b.sample(round(users * 0.015))]
    config["duplicateProxyUsers"] = duplicates

    users_by_id = {u["id"]: u for u in b.users}
    groups_by_id = {g["id"]: g for g in b.groups}
    skus_by_id = {s["skuId"]: s for s in sku_list}
    rules = license_rules.LicensingRules.from_config(config)
    index = memberships.index_memberships(groups_by_id)
    licensing.process_users(
        users_by_id, users_by_id, groups_by_id, skus_by_id, rules, GENERATED_AT, index
    )
    _simulate_phone_removals(
        b, groups=groups_by_id, users=users_by_id, skus=skus_by_id, rules=rules, index=index
    )

    last_sync = GENERATED_AT + timedelta(hours=1, minutes=10)
    return {
        "organization": [
            {
                "id": b.tenant_id,
                "displayName": "Contoso (synthetic)",
                "countryLetterCode": TENANT_COUNTRY,
                "onPremisesSyncEnabled": True,
                "onPremisesLastSyncDateTime": clock.iso(last_sync),
                "verifiedDomains": [
                    {
                        "capabilities": "Email, OfficeCommunicationsOnline",
                        "isDefault": True,
                        "isInitial": False,
                        "name": DOMAIN,
                        "type": "Managed",
                    },
                    {
                        "capabilities": "Email, OfficeCommunicationsOnline",
                        "isDefault": False,
                        "isInitial": True,
                        "name": "contoso.onmicrosoft.com",
                        "type": "Managed",
                    },
                ],
            }
        ],
        "subscribedSkus": sku_list,
        "groups": b.groups,
        "users": b.users,
        "x-graphsim": {
            **config,
            "tenantSizeClass": size_class(users),
            "onPremisesSyncedGroups": b.synced_groups,
            "generator": {
                "users": users,
                "groups": groups,
                "skus": skus,
                "seed": seed,
                "unlicensed_groups": unlicensed_groups,
                "generatedAt": clock.iso(GENERATED_AT),
            },
        },
    }


def _simulate_phone_removals(
    b: _Builder,
    *,
    groups: dict[str, Json],
    users: dict[str, Json],
    skus: dict[str, Json],
    rules: license_rules.LicensingRules,
    index: dict[str, set[str]],
) -> None:
    """Remove ~2% of users from the Teams Phone group an hour later: calling plans block it."""
    phone = next((g for g in b.groups if g["displayName"] == f"LIC-{PHONE_SKU}-TeamsPhone"), None)
    calling = next(
        (g for g in b.groups if g["displayName"] == f"LIC-{CALLING_SKU}-CallingPlan"), None
    )
    if phone is None or calling is None:
        return
    calling_ids = set(memberships.member_user_ids(calling))
    both = [m["id"] for m in phone["members"] if m["id"] in calling_ids]
    leaving = {both[i] for i in b.sample(round(b.n_users * 0.02), range(len(both)))}
    if not leaving:
        return
    phone["members"] = [m for m in phone["members"] if m["id"] not in leaving]
    for uid in leaving:
        index[uid].discard(phone["id"])
    later = GENERATED_AT + timedelta(hours=1)
    licensing.process_users(leaving, users, groups, skus, rules, later, index)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m graphsim.synthetic --spec users=1000,groups=10 --out tenant.json``."""
    parser = argparse.ArgumentParser(prog="python -m graphsim.synthetic", description=__doc__)
    parser.add_argument("--spec", default="", help="e.g. users=100000,groups=60,skus=30,seed=7")
    parser.add_argument("--out", default="-", help="output file (compact JSON); - for stdout")
    args = parser.parse_args(argv)
    tenant = generate_tenant(**parse_synthetic_spec(args.spec))
    data = orjson.dumps(tenant)
    if args.out == "-":
        sys.stdout.buffer.write(data + b"\n")
    else:
        Path(args.out).write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
