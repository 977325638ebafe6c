"""Synthetic tenants: deterministic, realistically shaped, and consistent with the GBL processor."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from graphsim import (
    license_rules,
    licensing,
    memberships,
    product_catalog,
    synthetic,
    tenant_builder,
)

N = 5000

slow = pytest.mark.skipif(os.environ.get("RUN_SLOW") != "1", reason="set RUN_SLOW=1")

# One xdist worker runs the module, so its 5,000-user tenant (module-scoped) is generated once.
pytestmark = pytest.mark.xdist_group("synthetic-tenant")


@pytest.fixture(scope="module")
def tenant() -> dict[str, Any]:
    return synthetic.generate_tenant(users=N)


def users_with_error(tenant: dict[str, Any]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for user in tenant["users"]:
        counts.update({e["error"] for e in user["licenseAssignmentStates"] if e["error"]})
    return counts


def test_same_seed_gives_identical_json() -> None:
    """Benchmarks and bug reports must be reproducible from the spec alone."""
    first = orjson.dumps(synthetic.generate_tenant(users=300, groups=12, seed=3))

    assert orjson.dumps(synthetic.generate_tenant(users=300, groups=12, seed=3)) == first
    assert orjson.dumps(synthetic.generate_tenant(users=300, groups=12, seed=4)) != first


def test_cli_output_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Set iteration order varies per process; the JSON must not."""
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"tenant-{hash_seed}.json"
        command = [sys.executable, "-m", "graphsim.synthetic", "--spec", "users=400,groups=10"]
        subprocess.run(
            [*command, "--out", str(out)],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        outputs.append(out.read_bytes())

    assert outputs[0] == outputs[1]
    assert len(orjson.loads(outputs[0])["users"]) == 400


def test_sizes_follow_the_parameters(tenant: dict[str, Any]) -> None:
    """users, licensed groups, unlicensed groups and SKUs as asked."""
    licensed = [g for g in tenant["groups"] if g["assignedLicenses"]]

    assert len(tenant["users"]) == N
    assert len(licensed) == 60
    assert len(tenant["groups"]) == 80
    assert len(tenant["subscribedSkus"]) == 30
    assert tenant["x-graphsim"]["tenantSizeClass"] == "L"


def test_one_licensed_group_holds_a_quarter_of_the_users(tenant: dict[str, Any]) -> None:
    """The AllStaff-style group every large tenant has."""
    sizes = sorted(len(memberships.member_user_ids(g)) for g in tenant["groups"])

    assert sizes[-1] == N // 4
    assert sizes[-2] <= N * 0.2


def test_users_are_in_about_three_licensed_groups(tenant: dict[str, Any]) -> None:
    """Overlapping licensed groups are what makes GBL interesting."""
    total = sum(
        len(memberships.member_user_ids(g)) for g in tenant["groups"] if g["assignedLicenses"]
    )

    assert 2.5 <= total / N <= 3.2


def test_every_licensing_error_hits_a_few_percent_of_users(tenant: dict[str, Any]) -> None:
    """Each documented error kind (§3.2) shows up often enough to exercise alerting."""
    counts = users_with_error(tenant)

    for error in (
        "CountViolation",
        "ProhibitedInUsageLocationViolation",
        "MutuallyExclusiveViolation",
        "UniquenessViolation",
        "DependencyViolation",
    ):
        assert 0.005 * N <= counts[error] <= 0.06 * N, (error, counts[error])


def test_all_ids_are_guids(tenant: dict[str, Any]) -> None:
    """Graph object ids are GUIDs; the consuming service may parse them."""
    ids = [u["id"] for u in tenant["users"]] + [g["id"] for g in tenant["groups"]]
    ids += [s["skuId"] for s in tenant["subscribedSkus"]] + [tenant["organization"][0]["id"]]
    ids += [p["servicePlanId"] for s in tenant["subscribedSkus"] for p in s["servicePlans"]]

    assert all(str(uuid.UUID(i)) == i for i in ids)
    assert len({u["id"] for u in tenant["users"]}) == N


def test_consumed_units_equal_the_users_holding_each_sku(tenant: dict[str, Any]) -> None:
    """§4.1: one seat per user per SKU, whatever the number of paths."""
    holders = collections.Counter(
        lic["skuId"] for u in tenant["users"] for lic in u["assignedLicenses"]
    )

    for sku in tenant["subscribedSkus"]:
        assert sku["consumedUnits"] == holders[sku["skuId"]]
        assert sku["consumedUnits"] <= sku["prepaidUnits"]["enabled"]


def test_tenant_is_a_fixed_point_of_the_processor(tenant: dict[str, Any]) -> None:
    """Reprocessing everyone changes nothing: the snapshot is what Entra would show."""
    copy = orjson.loads(orjson.dumps(tenant))
    users = {u["id"]: u for u in copy["users"]}
    groups = {g["id"]: g for g in copy["groups"]}
    skus = {s["skuId"]: s for s in copy["subscribedSkus"]}
    rules = license_rules.LicensingRules.from_config(copy["x-graphsim"])

    changed = licensing.process_users(
        users, users, groups, skus, rules, tenant_builder.GENERATED_AT, None
    )

    assert changed == set()
    assert orjson.dumps(copy) == orjson.dumps(tenant)


def test_nested_group_members_are_present_and_license_nobody(tenant: dict[str, Any]) -> None:
    """§4.1: nested groups are not supported, so their members get nothing via the parent."""
    nested = [
        (g, m["id"])
        for g in tenant["groups"]
        for m in g["members"]
        if m["@odata.type"] == "#microsoft.graph.group"
    ]
    users = {u["id"]: u for u in tenant["users"]}
    groups = {g["id"]: g for g in tenant["groups"]}

    assert nested
    for parent, child in nested:
        direct = set(memberships.member_user_ids(parent))
        for uid in set(memberships.member_user_ids(groups[child])) - direct:
            assert all(
                e["assignedByGroup"] != parent["id"] for e in users[uid]["licenseAssignmentStates"]
            )


def test_unlicensed_groups_include_teams_distribution_and_dynamic_groups(
    tenant: dict[str, Any],
) -> None:
    """Real tenants are full of groups that carry no licenses."""
    unlicensed = [g for g in tenant["groups"] if not g["assignedLicenses"]]

    assert len(unlicensed) == 20
    assert any("Unified" in g["groupTypes"] for g in unlicensed)
    assert any(g["mailEnabled"] and not g["securityEnabled"] for g in unlicensed)
    dynamic = [g for g in unlicensed if "DynamicMembership" in g["groupTypes"]]
    assert dynamic
    assert all(g["membershipRule"] for g in dynamic)


def test_users_look_like_a_real_directory(tenant: dict[str, Any]) -> None:
    """~1% without usageLocation, a few % disabled, ~5% with a direct assignment."""
    users = tenant["users"]
    no_location = sum(u["usageLocation"] is None for u in users)
    disabled = sum(not u["accountEnabled"] for u in users)
    direct = sum(
        any(e["assignedByGroup"] is None for e in u["licenseAssignmentStates"]) for u in users
    )

    assert users[0]["userPrincipalName"] == "user1@contoso.example"
    assert 0.005 * N <= no_location <= 0.02 * N
    assert 0.01 * N <= disabled <= 0.06 * N
    assert 0.03 * N <= direct <= 0.06 * N


def test_rules_refer_to_plans_of_the_tenants_skus(tenant: dict[str, Any]) -> None:
    """x-graphsim rules must be about plans the tenant can actually hold."""
    plans = {p["servicePlanId"] for s in tenant["subscribedSkus"] for p in s["servicePlans"]}
    x = tenant["x-graphsim"]

    assert x["tenantCountry"] == tenant["organization"][0]["countryLetterCode"]
    assert {p for pair in x["mutuallyExclusivePlans"] for p in pair} <= plans
    assert set(x["planDependencies"]) <= plans
    assert set(x["prohibitedUsageLocations"]) <= {s["skuId"] for s in tenant["subscribedSkus"]}


def test_skus_and_plans_come_from_the_catalog(tenant: dict[str, Any]) -> None:
    """Real SKUs: Microsoft 365 E3 first, with its catalog plans."""
    catalog = product_catalog.load_catalog()
    e3 = tenant["subscribedSkus"][0]

    assert e3["skuPartNumber"] == "SPE_E3"
    assert len(e3["servicePlans"]) == len(catalog[e3["skuId"]].plans)


def test_catalog_is_keyed_on_trimmed_guids_and_deduplicated() -> None:
    """data/README: NBSP-padded GUIDs and duplicate (SKU, plan) pairs are in the file."""
    catalog = product_catalog.load_catalog()

    assert "420c7602-7f70-4895-9394-d3d679ea36fb" in catalog
    assert len(catalog["6fd2c87f-b296-42f0-b197-1e91e994b900"].plans) == 36
    assert all("\u00a0" not in s.part_number for s in catalog.values())
    assert all(len({p for p, _ in s.plans}) == len(s.plans) for s in catalog.values())


def test_small_tenants_still_work() -> None:
    """Tiny specs must not crash even when scenarios cannot all fit."""
    small = synthetic.generate_tenant(users=10, groups=2, skus=1, unlicensed_groups=1)

    assert len(small["users"]) == 10
    assert len(small["groups"]) == 3
    assert small["x-graphsim"]["tenantSizeClass"] == "S"


def test_size_classes() -> None:
    """S < 50 users, M 50-500, L above."""
    assert [synthetic.size_class(n) for n in (49, 50, 500, 501)] == ["S", "M", "M", "L"]


def test_parse_synthetic_spec_fills_defaults_and_rejects_typos() -> None:
    """A typo in a benchmark spec must fail loudly rather than generate the wrong tenant."""
    assert synthetic.parse_synthetic_spec("users=1000,groups=10") == {
        "users": 1000,
        "groups": 10,
        "skus": 30,
        "seed": 7,
        "unlicensed_groups": 20,
    }
    assert synthetic.parse_synthetic_spec("") == synthetic.SPEC_KEYS
    for bad in ("user=10", "users=ten", "users", "users=0", "groups=-1"):
        with pytest.raises(ValueError, match="spec"):
            synthetic.parse_synthetic_spec(bad)


@pytest.mark.slow
@slow
def test_a_100k_user_tenant_is_generated_in_well_under_20_seconds() -> None:
    """Scale target: 100k users, 60 licensed groups, 30 SKUs."""
    started = time.perf_counter()
    big = synthetic.generate_tenant()
    elapsed = time.perf_counter() - started

    assert len(big["users"]) == 100000
    assert elapsed < 20
    counts = users_with_error(big)
    assert all(counts[e] > 500 for e in license_rules.ERRORS if e != "Other")
