"""`license-guard whatif` with group and product changes: --delete-group, --remove-sku,
--add-sku [--disabled-plans], and the assignment errors Entra would likely record.

Errors and their meaning: https://learn.microsoft.com/en-us/entra/identity/users/
licensing-groups-resolve-problems (CountViolation, MutuallyExclusiveViolation,
ProhibitedInUsageLocationViolation; a licensed group cannot be deleted before its licenses are
removed). The SharePoint Plan 1 / Plan 2 conflict is the E1 + E3 example of that page's older
revision (shared/data/plan-conflicts.csv).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.catalog.plan_conflicts import PlanConflictsError, plan_conflicts, read_plan_conflicts
from shared.cli.main import EXIT_BAD_INPUT, EXIT_DATA_LOSS, EXIT_OK, main
from tests.cli.output import assert_shows
from tests.demo_tenant import DEMO

BASE = "Licensing_Office365_E3_Base"
TEAMS = "Licensing_Office365_E3_Teams"
EMS = "Licensing_Office365_EMS_E3"
SHAREPOINT_CONFLICT_SOURCE = (
    "https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/active-directory/"
    "enterprise-users/licensing-groups-resolve-problems.md"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["whatif", "--snapshot", str(DEMO), *args])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status, out, _ = run(capsys, *args, "--format", "json")
    return status, json.loads(out)


def users_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["displayName"]: u for u in document["users"]}


def test_deleting_the_e3_group_takes_e3_and_mailboxes_from_its_members(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(capsys, "--delete-group", BASE)

    assert status == EXIT_DATA_LOSS
    assert document["changes"] == [
        {"type": "deleteGroup", "groupId": document["changes"][0]["groupId"], "groupName": BASE}
    ]
    alannah = users_of(document)["Alannah Shaw"]
    assert [(x["skuPartNumber"], x["change"]) for x in alannah["licenses"]] == [
        ("ENTERPRISEPACK", "lost")
    ]
    assert "EXCHANGE_S_ENTERPRISE" in alannah["dataPlansLost"]
    assert alannah["capabilitiesLost"]
    # Dave Bedrat keeps E3 through the Teams group, which enables Teams only: E3 is changed,
    # not lost, and its Exchange plan is flagged.
    dave = users_of(document)["Dave Bedrat"]
    assert [(x["skuPartNumber"], x["change"]) for x in dave["licenses"]] == [
        ("ENTERPRISEPACK", "changed")
    ]
    assert "EXCHANGE_S_ENTERPRISE" in dave["dataPlansLost"]
    assert any(
        "does not delete a group that still assigns licenses" in n for n in document["notes"]
    )


def test_deleting_a_synced_group_says_to_delete_it_on_premises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Entra cannot delete a group synced from on-premises: after its licenses are removed in
    the cloud, it is deleted in Active Directory and Entra Connect syncs the deletion."""
    _, synced = run_json(capsys, "--delete-group", BASE)
    _, cloud = run_json(capsys, "--delete-group", EMS)

    (note,) = [n for n in synced["notes"] if "does not delete" in n]
    assert "then delete it in on-premises Active Directory and let Entra Connect sync" in note
    (note,) = [n for n in cloud["notes"] if "does not delete" in n]
    assert "on-premises" not in note
    _, unlicensed = run_json(capsys, "--delete-group", "Sales_Team")
    assert unlicensed["notes"] == [
        "'Sales_Team' is synced from on-premises: delete it in on-premises Active Directory "
        "and let Entra Connect sync."
    ]


def test_a_change_to_a_group_an_earlier_change_deletes_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(
        capsys, "--delete-group", "Sales_Team", "--add-member", "Sales_Team", "Alex Wilber"
    )

    assert status == EXIT_BAD_INPUT
    assert "'Sales_Team' is deleted by an earlier change (--delete-group)" in err
    assert "is not in the snapshot" not in err


def test_removing_ems_from_its_group_loses_ems_without_data_loss(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(capsys, "--remove-sku", EMS, "EMS")

    assert status == EXIT_OK
    assert document["changes"][0]["type"] == "removeSku"
    changed = {
        name: [(x["skuPartNumber"], x["change"]) for x in u["licenses"]]
        for name, u in users_of(document).items()
    }
    assert changed["Alannah Shaw"] == [("EMS", "lost")]
    assert len(changed) == 8
    assert document["dataLossRisk"] is False
    ems = next(s for s in document["skus"] if s["skuPartNumber"] == "EMS")
    # 7 of the 8 need a seat: Pradeep's EMS fails for his usage location
    assert (ems["demandBefore"], ems["demandAfter"]) == (7, 0)


def test_removing_a_product_the_group_does_not_assign_is_a_noted_no_op(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(capsys, "--remove-sku", EMS, "STANDARDPACK")

    assert status == EXIT_OK
    assert document["users"] == []
    assert any("does not assign" in n and "no change" in n for n in document["notes"])


def test_e1_for_users_who_hold_e3_predicts_the_sharepoint_conflict_and_seats(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(capsys, "--add-sku", TEAMS, "STANDARDPACK")

    assert status == EXIT_DATA_LOSS
    users = users_of(document)
    assert set(users) == {"Dave Bedrat", "David Abbott", "Grady Archie"}
    # Dave's conflict fails the group's products for him (all-or-none): he takes no E1 seat,
    # and David and Grady compete for the one free seat
    for name in ("David Abbott", "Grady Archie"):
        assert "CountViolation" in {e["code"] for e in users[name]["predictedErrors"]}
    assert "CountViolation" not in {e["code"] for e in users["Dave Bedrat"]["predictedErrors"]}
    # Dave holds E3 with SharePoint (Plan 2) through the base group: the documented conflict.
    dave = {e["code"]: e for e in users["Dave Bedrat"]["predictedErrors"]}
    conflict = dave["MutuallyExclusiveViolation"]
    assert (conflict["severity"], conflict["source"]) == ("error", SHAREPOINT_CONFLICT_SOURCE)
    assert "SHAREPOINTSTANDARD vs SHAREPOINTENTERPRISE" in conflict["message"]
    # David's E3 (Teams group) has SharePoint disabled: only the tenant's own evidence (Isaiah
    # Langer's E3 fails while he holds E1) says it may conflict, as a warning.
    david = {e["code"]: e for e in users["David Abbott"]["predictedErrors"]}
    assert david["MutuallyExclusiveViolation"]["severity"] == "warning"
    assert david["MutuallyExclusiveViolation"]["source"] == "this tenant's licenseAssignmentStates"
    assert document["seatsNeeded"] == [
        {
            "skuId": "18181a46-0d4e-45cd-891e-60aabd171b4e",
            "skuPartNumber": "STANDARDPACK",
            "seatsNeeded": 2,
            "seatsFree": 1,
            "short": 1,
        }
    ]


def test_e1_without_its_sharepoint_plan_is_no_conflict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(
        capsys,
        "--add-sku",
        "Sales_Team",
        "STANDARDPACK",
        "--disabled-plans",
        "SHAREPOINTSTANDARD",
        "--add-member",
        "Sales_Team",
        "Alannah Shaw",
    )

    alannah = users_of(document)["Alannah Shaw"]
    severities = {e["code"]: e["severity"] for e in alannah["predictedErrors"]}
    assert severities == {"MutuallyExclusiveViolation": "warning", "CountViolation": "error"}
    assert document["changes"][0]["disabledPlans"] == ["SHAREPOINTSTANDARD"]
    assert status == EXIT_DATA_LOSS  # two users for the one free E1 seat


def test_two_users_for_one_free_seat_say_one_of_them_would_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Lynne (already in Sales_Team) and Alannah would newly need E1, one seat is free: Entra
    gives it to one of them, so one user (not two) would get CountViolation."""
    status, out, _ = run(
        capsys,
        "--add-sku",
        "Sales_Team",
        "STANDARDPACK",
        "--disabled-plans",
        "SHAREPOINTSTANDARD",
        "--add-member",
        "Sales_Team",
        "Alannah Shaw",
    )

    assert status == EXIT_DATA_LOSS
    assert_shows(
        out,
        "PREDICTED ERRORS (1 of 2 user(s) would get an assignment error for want of a seat: "
        "Entra does not say which)",
        "ERROR   CountViolation on Office 365 E1: 1 of 2 user(s)",
        "2 user(s) would newly need a seat, 1 free, SHORT 1: CountViolation",
        "predicted CountViolation: 2 users would newly need Office 365 E1 (STANDARDPACK) but "
        "only 1 seat is free: 1 of them would get CountViolation (Entra does not say which); "
        "Alannah Shaw is one of the 2.",
    )


def test_a_conflict_and_a_seat_short_count_the_certain_user_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README's E1 example: Dave's conflict is certain, David and Grady compete for the one
    free E1 seat: two users would get an error, not three."""
    status, out, _ = run(capsys, "--add-sku", TEAMS, "STANDARDPACK")

    assert status == EXIT_DATA_LOSS
    assert_shows(
        out,
        "PREDICTED ERRORS (1 user(s) would get an assignment error; 1 of 2 more for want of a "
        "seat: Entra does not say which)",
        "ERROR   CountViolation on Office 365 E1: 1 of 2 user(s)",
        "ERROR   MutuallyExclusiveViolation on Office 365 E1: 1 user(s)",
    )


def test_the_seats_table_leaves_out_the_user_a_predicted_conflict_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README's E1 example: Entra assigns Dave none of E1 (his conflict is certain), so he takes
    no seat: the SEATS table's shortfall is the predictions' SHORT 1, not 2."""
    _, out, _ = run(capsys, "--add-sku", TEAMS, "STANDARDPACK")
    _, document = run_json(capsys, "--add-sku", TEAMS, "STANDARDPACK")

    assert_shows(
        out,
        "Office 365 E1: 2 user(s) would newly need a seat, 1 free, SHORT 1: CountViolation",
        "Office 365 E1 [STANDARDPACK]: should be held by 1 -> 3 (+2, not counting 1 user a "
        "predicted error fails), 2 seats enabled, SHORTFALL 1",
    )
    (e1,) = [s for s in document["skus"] if s["skuPartNumber"] == "STANDARDPACK"]
    assert (e1["demandAfter"], e1["shortfall"]) == (3, 1)


def test_seats_exhausted_predict_count_violation_for_a_single_user(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "--add-sku", "Sales_Team", "EMS")

    assert status == EXIT_DATA_LOSS
    assert_shows(
        out,
        "PREDICTED ERRORS (1 user(s) would get an assignment error)",
        "ERROR   CountViolation on",
        "1 user(s) would newly need a seat, 0 free, SHORT 1: CountViolation",
        "predicted CountViolation: Lynne Robbins would newly need Enterprise Mobility + "
        "Security E3 (EMS) and no seat of it is free: Entra would record CountViolation.",
    )


def test_one_free_seat_for_one_user_predicts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = run_json(capsys, "--add-sku", "Sales_Team", "STANDARDPACK")

    lynne = users_of(document)["Lynne Robbins"]
    assert lynne["predictedErrors"] == []
    assert document["predictedErrors"] == 0
    assert status == EXIT_OK


def test_a_usage_location_the_tenant_already_rejects_is_predicted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pradeep Gupta (CU) is in ProhibitedInUsageLocationViolation for EMS in the demo."""
    document = json.loads(DEMO.read_text())
    lynne = next(u for u in document["users"] if u["displayName"] == "Lynne Robbins")
    lynne["usageLocation"] = "CU"
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    status = main(
        ["whatif", "--snapshot", str(path), "--add-sku", "Sales_Team", "EMS", "--format", "json"]
    )
    result = json.loads(capsys.readouterr().out)

    assert status == EXIT_DATA_LOSS
    codes = [e["code"] for e in users_of(result)["Lynne Robbins"]["predictedErrors"]]
    assert "ProhibitedInUsageLocationViolation" in codes


def test_disabled_plans_without_add_sku_is_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "--disabled-plans", "SHAREPOINTSTANDARD")

    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "--disabled-plans must follow an --add-sku" in capsys.readouterr().err


def test_the_conflicts_table_has_a_source_for_every_row() -> None:
    table = plan_conflicts()

    assert {(r.name_a, r.name_b, r.active) for r in table} >= {
        ("SHAREPOINTENTERPRISE", "SHAREPOINTSTANDARD", True),
        ("EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_STANDARD", False),
    }
    assert all(r.source.startswith("https://") for r in table)


def test_a_malformed_conflicts_table_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "conflicts.csv"
    path.write_text("planA,planAId,planB,planBId,status,source,note\na,not-a-guid,b,x,active,,\n")

    with pytest.raises(PlanConflictsError, match="row 2"):
        read_plan_conflicts(path)
