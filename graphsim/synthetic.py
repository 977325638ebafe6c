"""Deterministic synthetic tenants for graphsim (load and scale tests up to 100k users).

A tenant is a snapshot dict (``subscribedSkus``, ``groups`` with ``members``, ``users``,
``organization``, ``x-graphsim``) whose licensing state was produced by running
:mod:`graphsim.licensing` over every user, so it is internally consistent by construction.
Everything derives from ``random.Random(seed)`` and a fixed clock: the same parameters give
byte-identical JSON. SKUs and their service plans are real (:mod:`graphsim.product_catalog`);
the building is :class:`graphsim.tenant_builder.TenantBuilder`'s, this module runs the
licensing processor over the result and is the command line (``python -m graphsim.synthetic``).

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
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from graphsim.clock import iso
from graphsim.license_rules import LicensingRules
from graphsim.licensing import paused_cyclic_gc, process_users
from graphsim.memberships import index_memberships, member_user_ids
from graphsim.tenant_builder import (
    CALLING_SKU,
    DOMAIN,
    GENERATED_AT,
    PHONE_SKU,
    TENANT_COUNTRY,
    TenantBuilder,
)

Json = dict[str, Any]

SPEC_KEYS = {"users": 100000, "groups": 60, "skus": 30, "seed": 7, "unlicensed_groups": 20}


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


def generate_tenant(
    users: int = 100000,
    groups: int = 60,
    skus: int = 30,
    seed: int = 7,
    unlicensed_groups: int = 20,
) -> Json:
    """A full, internally consistent tenant snapshot; same arguments, same JSON."""
    with paused_cyclic_gc():
        return _generate(users, groups, skus, seed, unlicensed_groups)


def _generate(users: int, groups: int, skus: int, seed: int, unlicensed_groups: int) -> Json:
    b = TenantBuilder(users, groups, skus, seed, unlicensed_groups)
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
    rules = LicensingRules.from_config(config)
    index = index_memberships(groups_by_id)
    process_users(users_by_id, users_by_id, groups_by_id, skus_by_id, rules, GENERATED_AT, index)
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
                "onPremisesLastSyncDateTime": iso(last_sync),
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
                "generatedAt": iso(GENERATED_AT),
            },
        },
    }


def _simulate_phone_removals(
    b: TenantBuilder,
    *,
    groups: dict[str, Json],
    users: dict[str, Json],
    skus: dict[str, Json],
    rules: LicensingRules,
    index: dict[str, set[str]],
) -> None:
    """Remove ~2% of users from the Teams Phone group an hour later: calling plans block it."""
    phone = next((g for g in b.groups if g["displayName"] == f"LIC-{PHONE_SKU}-TeamsPhone"), None)
    calling = next(
        (g for g in b.groups if g["displayName"] == f"LIC-{CALLING_SKU}-CallingPlan"), None
    )
    if phone is None or calling is None:
        return
    calling_ids = set(member_user_ids(calling))
    both = [m["id"] for m in phone["members"] if m["id"] in calling_ids]
    leaving = {both[i] for i in b.sample(round(b.n_users * 0.02), range(len(both)))}
    if not leaving:
        return
    phone["members"] = [m for m in phone["members"] if m["id"] not in leaving]
    for uid in leaving:
        index[uid].discard(phone["id"])
    later = GENERATED_AT + timedelta(hours=1)
    process_users(leaving, users, groups, skus, rules, later, index)


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
