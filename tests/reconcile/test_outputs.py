"""What a night writes: configuration snapshot and drift (with the audit actor), self-check,
migration plan, and the summary handed to the alerts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.fakes.tenant import audit_target
from shared.render.migration import MIGRATION_CSV_HEADER
from shared.service.reconcile.run_state import CONFIG_LATEST
from tests.csv_files import csv_rows
from tests.demo_tenant import DIEGO, E3_BASE, EMS, EMS_E3, ENTERPRISEPACK
from tests.reconcile.conftest import Nightly, crashed_at

pytestmark = pytest.mark.anyio

DAY = 24 * 3600
NEW_PLAN = "0b2a7d8e-0000-4000-8000-00000000feed"


def blob_json(nightly: Nightly, names: list[str], suffix: str) -> Any:
    [name] = [n for n in names if n.endswith(suffix)]
    data = nightly.blobs.get(name)
    assert data is not None
    return json.loads(data)


def sku(nightly: Nightly, sku_id: str) -> dict[str, Any]:
    return next(s for s in nightly.directory.skus if s["skuId"] == sku_id)


async def license_change_actor(nightly: Nightly) -> object:
    """Tonight's run: who its config diff names for the one group-licenses-changed item."""
    result = await nightly.run()
    diff = blob_json(nightly, result.report_blobs, "config-diff.json")
    [change] = [c for c in diff["changes"] if c["kind"] == "group-licenses-changed"]
    return change["actor"]


async def test_the_config_snapshot_lists_licensed_groups_and_every_skus_plans(
    nightly: Nightly,
) -> None:
    result = await nightly.run()

    config = blob_json(nightly, result.report_blobs, "/config.json")

    assert {g["displayName"] for g in config["groups"]} == {
        "Licensing_Office365_E3_Base",
        "Licensing_Office365_E3_Teams",
        "Licensing_Office365_EMS_E3",
    }
    assert all("members" not in g and "memberIds" not in g for g in config["groups"])
    assert all(s["servicePlans"] for s in config["subscribedSkus"])
    assert nightly.blobs.get(CONFIG_LATEST) is not None
    assert not any(n.endswith("config-diff.json") for n in result.report_blobs)


async def test_the_diff_reports_a_new_plan_with_the_groups_it_reaches_and_who_changed_a_group(
    nightly: Nightly,
) -> None:
    await nightly.run()
    nightly.world.clock.advance(DAY)
    sku(nightly, EMS)["servicePlans"].append(
        {"servicePlanId": NEW_PLAN, "servicePlanName": "COPILOT_NEW", "appliesTo": "User"}
    )
    sku(nightly, EMS)["prepaidUnits"]["enabled"] += 10
    e3 = sku(nightly, ENTERPRISEPACK)
    plan = e3["servicePlans"][0]["servicePlanId"]
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": [plan]}], actor="alice@contoso.com"
    )

    result = await nightly.run()

    diff = blob_json(nightly, result.report_blobs, "config-diff.json")
    kinds = {c["kind"]: c for c in diff["changes"]}
    assert kinds["new-service-plan"]["subject"] == "EMS"
    assert "COPILOT_NEW" in kinds["new-service-plan"]["detail"]
    assert "Licensing_Office365_EMS_E3" in kinds["new-service-plan"]["detail"]
    assert kinds["group-licenses-changed"]["subject"] == "Licensing_Office365_E3_Base"
    assert kinds["group-licenses-changed"]["actor"] == "alice@contoso.com"
    assert "prepaid-units-changed" in kinds
    assert result.summary is not None
    assert {d.kind for d in result.summary.drift} == set(kinds)
    assert nightly.directory.requests["directory_audits"] == 1


async def test_locked_out_seats_changing_alone_read_as_a_change(nightly: Nightly) -> None:
    # A subscription locked out, then deleted: its seats leave `lockedOut` and nothing else
    # moves. The item used to list enabled, warning and suspended only, each "5 -> 5".
    sku(nightly, EMS)["prepaidUnits"]["lockedOut"] = 25
    await nightly.run()
    nightly.world.clock.advance(DAY)
    sku(nightly, EMS)["prepaidUnits"]["lockedOut"] = 0

    result = await nightly.run()

    diff = blob_json(nightly, result.report_blobs, "config-diff.json")
    [change] = [c for c in diff["changes"] if c["kind"] == "prepaid-units-changed"]
    assert "locked out 25 -> 0" in change["detail"]


async def test_a_license_change_names_who_set_the_license_not_who_edited_the_group_later(
    nightly: Nightly,
) -> None:
    await nightly.run()
    nightly.world.clock.advance(DAY)
    plan = sku(nightly, ENTERPRISEPACK)["servicePlans"][0]["servicePlanId"]
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": [plan]}], actor="alice@contoso.com"
    )
    nightly.world.clock.advance(600)
    group = nightly.directory.groups[E3_BASE]  # then its description, by someone else
    nightly.directory.record_audit(
        "Update group", [audit_target(group, "Group")], actor="bob@contoso.com"
    )

    assert await license_change_actor(nightly) == "alice@contoso.com"


async def test_the_later_of_two_license_changes_in_one_second_names_its_actor(
    nightly: Nightly,
) -> None:
    # Graph writes activityDateTime with as many fraction digits as it has: `...:05Z` and
    # `...:05.25Z` are in that order in time, not in text ('.' sorts before 'Z')
    await nightly.run()
    plan = sku(nightly, ENTERPRISEPACK)["servicePlans"][0]["servicePlanId"]
    for wait, actor, disabled in ((DAY, "alice@x", []), (0.25, "bob@x", [plan])):
        nightly.world.clock.advance(wait)
        nightly.directory.set_group_licenses(
            E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": disabled}], actor=actor
        )
    first, second = (e["activityDateTime"] for e in nightly.directory.audits[-2:])
    assert "." not in first  # a whole second, then a fraction
    assert second.endswith(".250000Z")

    assert await license_change_actor(nightly) == "bob@x"


async def test_a_license_change_made_while_last_nights_run_went_on_names_its_actor(
    nightly: Nightly,
) -> None:
    # Last night's snapshot holds the groups as its run read them, before the change; the
    # change comes in tonight's drift, and its audit entry is older than last night's finish.
    await crashed_at(nightly, "reconcile.after_groups")  # 02:00: the groups read, then cut short
    nightly.world.clock.advance(1800)
    plan = sku(nightly, ENTERPRISEPACK)["servicePlans"][0]["servicePlanId"]
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": [plan]}], actor="alice@contoso.com"
    )
    nightly.world.clock.advance(1800)
    await nightly.run()  # 03:00: the same night's run finishes with the groups it read
    nightly.world.clock.advance(DAY)

    assert await license_change_actor(nightly) == "alice@contoso.com"


async def test_a_change_made_after_tonights_run_read_the_groups_names_not_tonights_actor(
    nightly: Nightly,
) -> None:
    # Tonight's drift is the groups as the run read them: a change made while it went on is
    # tomorrow's drift, and its audit entry (later than the one behind tonight's change, and
    # read with it: the audit query ends at the finish) must not name tonight's actor.
    await nightly.run()
    nightly.world.clock.advance(DAY)
    e3_plans = [p["servicePlanId"] for p in sku(nightly, ENTERPRISEPACK)["servicePlans"]]
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": e3_plans[:1]}], actor="alice@x"
    )
    nightly.world.clock.advance(1800)
    await crashed_at(nightly, "reconcile.after_groups")  # the groups read, then cut short
    nightly.world.clock.advance(1800)
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": e3_plans[:2]}], actor="bob@x"
    )
    nightly.world.clock.advance(1800)

    assert await license_change_actor(nightly) == "alice@x"


async def test_a_licensed_group_turned_dynamic_is_configuration_drift(nightly: Nightly) -> None:
    # a dynamic rule replaces the group's members: who holds its licenses changes wholesale
    await nightly.run()
    nightly.world.clock.advance(DAY)
    rule = 'user.department -eq "Sales"'
    group = nightly.directory.groups[E3_BASE]
    group["membershipRule"] = rule
    nightly.directory.record_audit("Update group", [audit_target(group, "Group")], actor="bob@x")
    nightly.world.clock.advance(600)  # then someone sets its license too
    plan = sku(nightly, ENTERPRISEPACK)["servicePlans"][0]["servicePlanId"]
    nightly.directory.set_group_licenses(
        E3_BASE, [{"skuId": ENTERPRISEPACK, "disabledPlans": [plan]}], actor="alice@x"
    )

    result = await nightly.run()

    diff = blob_json(nightly, result.report_blobs, "config-diff.json")
    [change] = [c for c in diff["changes"] if c["kind"] == "dynamic-rule-changed"]
    assert change["subject"] == "Licensing_Office365_E3_Base"
    assert rule in change["detail"]
    assert change["actor"] == "bob@x"  # who set the rule, not who set the license later


async def test_the_self_check_lists_where_entra_and_the_core_disagree(nightly: Nightly) -> None:
    nightly.directory.listed_with_errors = {EMS_E3: [DIEGO]}
    nightly.directory.users[DIEGO]["assignedLicenses"] = []  # Graph's two fields disagree

    result = await nightly.run()

    check = blob_json(nightly, result.report_blobs, "self-check.json")
    assert {"groupId": EMS_E3, "userId": DIEGO, "problem": "in membersWithLicenseErrors only"} in (
        check["verdictDisagreements"]
    )
    assert any(m["userId"] == DIEGO for m in check["stateMismatches"])
    assert 0 < check["agreement"] < 1
    assert result.summary is not None
    assert result.summary.self_check_agreement == check["agreement"]
    assert result.summary.self_check_disagreements >= 2


async def test_an_unchanged_tenant_agrees_with_itself(nightly: Nightly) -> None:
    result = await nightly.run()

    check = blob_json(nightly, result.report_blobs, "self-check.json")

    assert check["verdictDisagreements"] == []


async def test_the_migration_plan_is_written_as_json_and_csv(nightly: Nightly) -> None:
    result = await nightly.run()

    plan = blob_json(nightly, result.report_blobs, "migration.json")
    [name] = [n for n in result.report_blobs if n.endswith("migration.csv")]
    rows = csv_rows(nightly.blobs.get(name) or b"")

    assert set(plan) == {"removalCandidates", "wouldDropPlans", "directOnly"}
    assert tuple(rows[0]) == MIGRATION_CSV_HEADER
    assert len(rows) - 1 == (
        len(plan["removalCandidates"])
        + len(plan["wouldDropPlans"])
        + sum(len(s["users"]) for s in plan["directOnly"])
    )
    assert len(rows) > 1


async def test_the_summary_counts_what_the_night_found(nightly: Nightly) -> None:
    result = await nightly.run()

    summary = result.summary
    assert summary is not None
    assert summary.users_scanned == 23
    assert summary.findings_by_code["CountViolation"] >= 2
    assert {s.sku_part_number for s in summary.seat_forecast} >= {"ENTERPRISEPACK", "EMS"}
    assert summary.top_groups_by_errors[0].errors >= 1
    assert set(summary.report_blobs) >= set(result.report_blobs[:-1])
    assert nightly.blobs.list("nightly-runs/") == []
