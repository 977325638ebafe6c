"""`license-guard whatif`: planned changes on a snapshot, gains and losses, data-loss exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.cli.main import EXIT_BAD_INPUT, EXIT_DATA_LOSS, EXIT_OK, main
from tests.builders import BASE_DISABLED, E3_PLANS
from tests.cli.output import assert_shows
from tests.cli.test_whatif_changes import run_json as on_demo_json
from tests.cli.test_whatif_changes import users_of
from tests.demo_tenant import DEMO, E3_BASE

BASE = "Licensing_Office365_E3_Base"
E1_SKU = "18181a46-0d4e-45cd-891e-60aabd171b4e"
LEAVE_E1 = ("--remove-member", "Licensing_Office365_E1", "Alex Wilber")
"""The change that takes Alex Wilber out of the E1 group `with_e1_group` adds."""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["whatif", *args])
    out, err = capsys.readouterr()
    return status, out, err


def on_demo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`whatif` on the demo snapshot."""
    return run(capsys, "--snapshot", str(DEMO), *args)


def demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))
    return str(path)


def with_e1_group(tmp_path: Path) -> str:
    """The demo plus a cloud group Licensing_Office365_E1 assigning E1, with Alex Wilber in it."""
    document = demo()
    alex = next(u for u in document["users"] if u["displayName"] == "Alex Wilber")
    document["groups"].append(
        {
            "id": "0e1e1e1e-0000-4000-8000-000000000001",
            "displayName": "Licensing_Office365_E1",
            "assignedLicenses": [{"skuId": E1_SKU, "disabledPlans": []}],
            "licenseProcessingState": "ProcessingComplete",
            "members": [{"@odata.type": "#microsoft.graph.user", "id": alex["id"]}],
        }
    )
    return write(tmp_path, document)


def test_removing_the_only_mailbox_group_is_a_data_loss_risk_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = on_demo(capsys, "--remove-member", BASE, "alannah.shaw@contoso.com")

    assert status == EXIT_DATA_LOSS
    assert_shows(
        out,
        "- Office 365 E3: lost (had 9/13 plans via Licensing_Office365_E3_Base)",
        "ERROR   DataLossRisk: Alannah Shaw would no longer hold Exchange Online mailbox",
        "30 days",
        "DATA-LOSS RISK for 1 user(s)",
    )


def test_json_names_the_lost_capabilities_with_plans_and_paths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, document = on_demo_json(capsys, "--remove-member", BASE, "Alannah Shaw")

    assert status == EXIT_DATA_LOSS
    assert set(document) == {
        "changes",
        "notes",
        "users",
        "skus",
        "seatsNeeded",
        "predictedErrors",
        "dataLossRisk",
    }
    assert document["dataLossRisk"] is True
    assert document["changes"][0]["type"] == "removeMember"
    alannah = users_of(document)["Alannah Shaw"]
    (lic,) = alannah["licenses"]
    assert (lic["skuPartNumber"], lic["change"]) == ("ENTERPRISEPACK", "lost")
    assert "EXCHANGE_S_ENTERPRISE" in lic["plansDisabled"]
    lost = {c["capability"]: c for c in alannah["capabilitiesLost"]}
    assert set(lost) == {"mailbox", "onedrive"}
    (grant,) = lost["mailbox"]["before"]
    assert grant["servicePlanName"] == "EXCHANGE_S_ENTERPRISE"
    assert grant["paths"] == [{"type": "group", "groupId": E3_BASE, "groupName": BASE}]
    assert alannah["findings"][0]["code"] == "DataLossRisk"
    e3 = next(s for s in document["skus"] if s["skuPartNumber"] == "ENTERPRISEPACK")
    assert (e3["demandBefore"], e3["demandAfter"], e3["prepaidEnabled"]) == (17, 16, 25)


def test_moving_a_user_from_the_e1_group_to_the_e3_group_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = with_e1_group(tmp_path)

    status, out, _ = run(
        capsys,
        "--snapshot",
        snapshot,
        "--add-member",
        BASE,
        "Alex Wilber",
        *LEAVE_E1,
        "--format",
        "json",
    )

    assert status == EXIT_OK
    alex = users_of(json.loads(out))["Alex Wilber"]
    changes = {lic["skuPartNumber"]: lic["change"] for lic in alex["licenses"]}
    assert changes == {"STANDARDPACK": "lost", "ENTERPRISEPACK": "gained"}
    assert alex["capabilitiesLost"] == []


def test_the_same_move_in_the_wrong_order_is_still_judged_on_the_end_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = with_e1_group(tmp_path)

    status, _, _ = run(capsys, "--snapshot", snapshot, *LEAVE_E1)

    assert status == EXIT_DATA_LOSS


def test_disabling_exchange_in_a_group_is_a_loss_for_members_without_another_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plans = ",".join([*BASE_DISABLED, "EXCHANGE_S_ENTERPRISE"])  # what Base disables, and Exchange

    status, document = on_demo_json(capsys, "--set-disabled-plans", BASE, "ENTERPRISEPACK", plans)
    users = users_of(document)

    assert status == EXIT_DATA_LOSS
    at_risk = {name for name, u in users.items() if u["capabilitiesLost"]}
    assert [c["capability"] for c in users["Alannah Shaw"]["capabilitiesLost"]] == ["mailbox"]
    # Megan, Lee and Lidia hold E3 directly too: Exchange stays enabled through that path.
    assert {"Megan Bowen", "Lee Gu", "Lidia Holloway"}.isdisjoint(at_risk)
    # Nestor's path from Base is in Error (UniquenessViolation): he holds no mailbox to lose.
    assert "Nestor Wilke" not in at_risk
    assert len(at_risk) == 13


def test_disabling_teams_is_not_data_loss(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = on_demo(
        capsys,
        "--set-disabled-plans",
        "Licensing_Office365_E3_Teams",
        "ENTERPRISEPACK",
        ",".join(E3_PLANS),  # every plan of the E3 the demo's groups assign
    )

    assert status == EXIT_OK
    assert "Dave Bedrat" in out  # loses Teams
    assert "now disabled: Microsoft Teams" in out
    assert "No data-loss risk" in out


def test_an_empty_plan_list_enables_every_plan(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = on_demo(capsys, "--set-disabled-plans", BASE, "ENTERPRISEPACK", "")

    assert status == EXIT_OK
    assert "Alannah Shaw <alannah.shaw@contoso.com>\n      ~ Office 365 E3: 9/13 -> 13/13" in out


def test_no_changes_means_no_affected_users(capsys: pytest.CaptureFixture[str]) -> None:
    status, document = on_demo_json(capsys)

    assert status == EXIT_OK
    assert document["users"] == []
    assert document["dataLossRisk"] is False


def test_adding_then_removing_in_one_run_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    membership = ("Licensing_Office365_EMS_E3", "Lynne Robbins")

    status, document = on_demo_json(
        capsys, "--add-member", *membership, "--remove-member", *membership
    )

    assert status == EXIT_OK
    assert document["users"] == []


def test_a_change_to_a_synced_group_notes_where_to_make_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = on_demo(capsys, "--add-member", BASE, "Lynne Robbins")

    assert "NOTES" in out
    assert "synced from on-premises" in out
    assert "+ Office 365 E3: gained, 9/13 plans via Licensing_Office365_E3_Base" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--add-member", "No Such Group", "Lynne Robbins"], "group 'No Such Group' is not in"),
        (["--add-member", BASE, "nobody@contoso.com"], "user 'nobody@contoso.com' is not in"),
        (["--set-disabled-plans", BASE, "E5", ""], "SKU 'E5' is not in"),
        (["--set-disabled-plans", BASE, "ENTERPRISEPACK", "TEAMS2"], "'TEAMS2' is not in"),
    ],
)
def test_an_unknown_name_is_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = on_demo(capsys, *args)
    errors = [line for line in err.splitlines() if "error:" in line]

    assert status == EXIT_BAD_INPUT
    assert out == ""
    assert len(errors) == 1
    assert message in errors[0]
    assert "Traceback" not in err


def test_an_ambiguous_display_name_lists_the_matching_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = demo()
    document["groups"].append(
        {"id": "0e1e1e1e-0000-4000-8000-000000000002", "displayName": BASE, "members": []}
    )
    snapshot = write(tmp_path, document)

    status, _, err = run(capsys, "--snapshot", snapshot, "--add-member", BASE, "Lynne Robbins")

    assert status == EXIT_BAD_INPUT
    assert_shows(
        err,
        "ambiguous",
        E3_BASE,
        "0e1e1e1e-0000-4000-8000-000000000002",
    )


def test_a_missing_snapshot_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run(capsys, "--snapshot", str(tmp_path / "missing.json"))

    assert status == EXIT_BAD_INPUT
    assert "cannot read the snapshot" in err


@pytest.mark.parametrize(
    "command", [["whatif"], ["diff"], ["report"], ["report", "migration"], ["evaluate"]]
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])

    assert exit_info.value.code == 0
    assert "usage: license-guard" in capsys.readouterr().out
