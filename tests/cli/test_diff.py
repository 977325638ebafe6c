"""`license-guard diff OLD NEW`: configuration drift, users' gains and losses, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.cli.main import EXIT_BAD_INPUT, EXIT_DATA_LOSS, EXIT_OK, main
from tests.cli.output import assert_shows
from tests.demo_tenant import DEMO, ENTERPRISEPACK, EXCHANGE_S_ENTERPRISE

BASE = "Licensing_Office365_E3_Base"
COPILOT = {
    "servicePlanId": "0d0c0d31-fae7-41f2-b909-eaf4d7f26dba",
    "servicePlanName": "Bing_Chat_Enterprise",
}


def demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def with_copilot(document: dict[str, Any]) -> dict[str, Any]:
    """`document` after Microsoft added a plan (Copilot's) to ENTERPRISEPACK."""
    e3 = next(s for s in document["subscribedSkus"] if s["skuId"] == ENTERPRISEPACK)
    e3["servicePlans"].append(COPILOT)
    return document


def write(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def diff(capsys: pytest.CaptureFixture[str], old: str, new: str, *args: str) -> tuple[int, str]:
    status = main(["diff", old, new, *args])
    return status, capsys.readouterr().out


def group(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in document["groups"] if g["displayName"] == name)


def test_a_snapshot_compared_with_itself_has_no_drift(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = diff(capsys, str(DEMO), str(DEMO), "--format", "json")
    document = json.loads(out)

    assert status == EXIT_OK
    assert document["groups"] == []
    assert document["skus"] == []
    assert document["users"] == []
    assert document["dataLossRisk"] is False


def test_a_new_plan_in_a_sku_is_reported_with_the_groups_it_reaches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = with_copilot(demo())

    status, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new), "--format", "json")
    document = json.loads(out)

    assert status == EXIT_OK  # a new plan is a gain, not a loss
    (sku,) = document["skus"]
    (plan,) = sku["newPlans"]
    assert plan["servicePlanName"] == "Bing_Chat_Enterprise"
    assert {g["groupName"] for g in plan["groups"]} == {BASE, "Licensing_Office365_E3_Teams"}
    dave = next(u for u in document["users"] if u["displayName"] == "Dave Bedrat")
    assert dave["licenses"][0]["plansEnabled"] == ["Bing_Chat_Enterprise"]


def test_the_table_says_microsoft_enables_a_new_plan_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = with_copilot(demo())

    _, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new))

    assert_shows(
        out,
        "PRODUCTS CHANGED (1)",
        "+ new service plan",
        "enables new plans by default, so it reaches Licensing_Office365_E3_Base",
    )


def test_a_group_dropping_exchange_is_drift_and_a_data_loss_risk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = demo()
    base = group(new, BASE)
    base["assignedLicenses"][0]["disabledPlans"].append(EXCHANGE_S_ENTERPRISE)

    status, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new), "--format", "json")
    document = json.loads(out)

    assert status == EXIT_DATA_LOSS
    assert document["dataLossRisk"] is True
    (drift,) = document["groups"]
    assert drift["displayName"] == BASE
    assert drift["disabledPlansChanged"][0]["nowDisabled"] == ["EXCHANGE_S_ENTERPRISE"]
    at_risk = {u["displayName"] for u in document["users"] if u["capabilitiesLost"]}
    assert "Alannah Shaw" in at_risk
    assert "Megan Bowen" not in at_risk  # direct E3 keeps her Exchange


def test_licensing_lost_a_rule_change_and_prepaid_seats_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = demo()
    group(new, "Licensing_Office365_E3_Teams")["assignedLicenses"] = []
    group(new, "Licensing_Office365_EMS_E3")["membershipRule"] = 'user.department -eq "IT"'
    next(s for s in new["subscribedSkus"] if s["skuPartNumber"] == "EMS")["prepaidUnits"][
        "enabled"
    ] = 10

    status, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new), "--format", "json")
    document = json.loads(out)
    groups = {g["displayName"]: g for g in document["groups"]}

    assert status == EXIT_OK  # Teams-only users lose Teams: not data loss
    assert groups["Licensing_Office365_E3_Teams"]["status"] == "lost"
    assert groups["Licensing_Office365_EMS_E3"]["membershipRule"] == {
        "before": None,
        "after": 'user.department -eq "IT"',
    }
    (ems,) = document["skus"]
    assert ems["prepaidUnits"]["before"]["enabled"] == 5
    assert ems["prepaidUnits"]["after"]["enabled"] == 10
    david = next(u for u in document["users"] if u["displayName"] == "David Abbott")
    assert david["licenses"][0]["change"] == "lost"


def test_a_group_gone_from_the_snapshot_is_not_called_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`license-guard snapshot` lists the licensed groups only (`assignedLicenses/any()`), so
    a group whose licenses were removed is absent from the next one, exactly as a deleted
    group would be; and Entra deletes no group that still assigns licenses. The table used to
    say "deleted" of a group that still exists."""
    new = demo()
    new["groups"] = [g for g in new["groups"] if g["displayName"] != "Licensing_Office365_E3_Teams"]

    status, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new))

    assert status == EXIT_OK
    assert_shows(
        out,
        "  Licensing_Office365_E3_Teams: no longer a licensed group (its licenses were removed;"
        " it may since have been deleted)",
        "      - no longer assigns",
    )


def test_a_user_leaving_the_base_group_shows_in_the_table_with_the_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = demo()
    base = group(new, BASE)
    alannah = next(u for u in new["users"] if u["displayName"] == "Alannah Shaw")
    base["members"] = [m for m in base["members"] if m["id"] != alannah["id"]]

    status, out = diff(capsys, str(DEMO), write(tmp_path, "new.json", new))

    assert status == EXIT_DATA_LOSS
    assert "members: +0 / -1" in out
    assert "ERROR   DataLossRisk: Alannah Shaw" in out
    assert "DATA-LOSS RISK for 1 user(s)" in out


def test_a_bad_snapshot_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")

    status = main(["diff", str(DEMO), str(bad)])

    assert status == EXIT_BAD_INPUT
    assert "not valid JSON" in capsys.readouterr().err


def test_snapshots_of_two_tenants_are_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin of several tenants compares Contoso's snapshot with Fabrikam's by mistake: no
    user or group of one is in the other, so every user 'lost' every license and the diff
    reported a data-loss risk for the whole tenant (exit 1). It is bad input, naming both."""
    other = demo()
    other["organization"][0].update(id="11111111-2222-4333-8444-555555555555", displayName="Fab")
    new = write(tmp_path, "fabrikam.json", other)

    status = main(["diff", str(DEMO), new])

    err = capsys.readouterr().err
    assert status == EXIT_BAD_INPUT
    [line] = [line for line in err.splitlines() if "error:" in line]
    assert "Contoso (8330943b-f203-51ad-97a1-09287ed9c928)" in line
    assert "Fab (11111111-2222-4333-8444-555555555555)" in line
    assert "two snapshots of one tenant" in line


def test_a_snapshot_without_its_organization_is_compared_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = demo()
    bare["organization"] = []

    status, _ = diff(capsys, str(DEMO), write(tmp_path, "bare.json", bare))

    assert status == EXIT_OK
