"""`license-guard evaluate`: the admin's contract — formats, keys, exit codes and safe exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.cli.main import main
from shared.render.csvsafe import safe_cell
from shared.render.paths import CSV_HEADER
from tests.cli.output import assert_shows
from tests.csv_files import csv_records, csv_text
from tests.demo_tenant import DEMO


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["evaluate", *args])
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "snapshot.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


@pytest.mark.parametrize(
    ("in_out", "in_err"),
    [
        pytest.param(
            (
                "Alannah Shaw <alannah.shaw@contoso.com>: Office 365 E3: 9/13 plans",
                "Dave Bedrat <dave.bedrat@contoso.com>: Office 365 E3: 10/13 plans",
                "David Abbott <david.abbott@contoso.com>: Office 365 E3: 1/13 plans",
            ),
            (),
            id="the-table-shows-the-articles-nine-ten-and-one-of-thirteen",
        ),
        pytest.param(
            ("Alannah Shaw",),
            ("warning:", "soft-deleted"),
            id="a-member-with-no-user-is-a-warning-and-the-rest-is-evaluated",
        ),
    ],
)
def test_the_whole_demo_snapshot_is_evaluated(
    capsys: pytest.CaptureFixture[str], in_out: tuple[str, ...], in_err: tuple[str, ...]
) -> None:
    status, out, err = run(capsys, "--snapshot", str(DEMO), "--all")

    assert status == 0
    for text in in_out:
        assert text in out
    for text in in_err:
        assert text in err


def test_the_table_lists_users_with_findings_first(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--snapshot", str(DEMO))

    assert out.index("USERS WITH FINDINGS") < out.index("USERS WITHOUT FINDINGS")
    assert out.index("CountViolation") < out.index("USERS WITHOUT FINDINGS")


def test_json_output_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--snapshot", str(DEMO), "--format", "json")
    document = json.loads(out)

    assert status == 0
    assert set(document) == {"summary", "users", "groups", "skus"}
    user = next(u for u in document["users"] if u["displayName"] == "Dave Bedrat")
    assert set(user) == {"id", "userPrincipalName", "displayName", "licenses", "findings"}
    (lic,) = user["licenses"]
    assert set(lic) == {"skuId", "skuPartNumber", "paths", "enabledPlans", "disabledPlans"}
    assert [p["groupName"] for p in lic["paths"]] == [
        "Licensing_Office365_E3_Base",
        "Licensing_Office365_E3_Teams",
    ]
    assert len(lic["enabledPlans"]) == 10
    assert "TEAMS1" in lic["enabledPlans"]
    finding = next(f for u in document["users"] for f in u["findings"] if not f["groupId"])
    assert set(finding) == {
        "key",
        "code",
        "severity",
        "skuId",
        "groupId",
        "message",
        "remedy",
        "link",
    }
    sku = next(s for s in document["skus"] if s["skuPartNumber"] == "EMS")
    assert (sku["demand"], sku["prepaidEnabled"], sku["shortfall"]) == (7, 5, 2)
    nested = next(f for g in document["groups"] for f in g["findings"])
    assert nested["code"] == "NestedGroupMember"
    assert len(nested["userIds"]) == 1


def test_json_output_can_go_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "evaluation.json"

    status, out, _ = run(
        capsys, "--snapshot", str(DEMO), "--format", "json", "--out", str(out_file)
    )

    assert status == 0
    assert out == ""
    assert len(json.loads(out_file.read_text())["users"]) == len(demo()["users"])


def test_csv_has_one_row_per_user_sku_and_path(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--snapshot", str(DEMO), "--format", "csv")
    rows = csv_records(out)

    assert status == 0
    assert csv_text(out).splitlines()[0] == ",".join(f'"{h}"' for h in CSV_HEADER)
    dave = [r for r in rows if r["displayName"] == "Dave Bedrat"]
    assert sorted(r["groupName"] for r in dave) == [
        "Licensing_Office365_E3_Base",
        "Licensing_Office365_E3_Teams",
    ]
    assert all(r["state"] == "Active" for r in dave)
    megan = {r["pathType"] for r in rows if r["displayName"] == "Megan Bowen"}
    assert megan == {"direct", "group"}
    adele = next(r for r in rows if r["displayName"] == "Adele Vance")
    assert adele["state"] == "Pending"
    alex = next(r for r in rows if r["displayName"] == "Alex Wilber")
    assert alex["state"] == "Active (stale)"


def test_csv_cells_that_look_like_formulas_are_neutralised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = demo()
    snapshot["users"][0]["displayName"] = '=HYPERLINK("http://evil.example","x")'
    snapshot["users"][1]["displayName"] = "@SUM(A1)"

    _, out, _ = run(capsys, "--snapshot", write(tmp_path, snapshot), "--format", "csv")
    names = {r["displayName"] for r in csv_records(out)}

    assert '\'=HYPERLINK("http://evil.example","x")' in names
    assert "'@SUM(A1)" in names


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_safe_cell_prefixes_every_formula_start(value: str) -> None:
    assert safe_cell(value) == "'" + value


def test_safe_cell_leaves_ordinary_text_alone() -> None:
    assert safe_cell("Licensing_Office365_E3_Base") == "Licensing_Office365_E3_Base"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: "{not json", "not valid JSON"),
        (lambda s: [], "top level must be a JSON object"),
        (lambda s: {k: v for k, v in s.items() if k != "users"}, "missing required key 'users'"),
        (lambda s: s["users"][0].pop("id") and s, "users[0]: missing required field 'id'"),
        (
            lambda s: s["subscribedSkus"][0].pop("servicePlans") and s,
            "missing required list 'servicePlans'",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_object_and_field_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, expected: str
) -> None:
    document = mutate(demo())

    status, out, err = run(capsys, "--snapshot", write(tmp_path, document))

    assert status == 2
    assert out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_group_error_names_the_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = demo()
    snapshot["groups"][0]["assignedLicenses"][0]["skuId"] = "not-a-guid"
    snapshot["groups"][0]["assignedLicenses"][0]["disabledPlans"] = "not-a-list"

    _, _, err = run(capsys, "--snapshot", write(tmp_path, snapshot))

    assert "group 'Licensing_Office365_E3_Base'" in err


GONE_SKU = "00000000-0000-0000-0000-000000000001"
RETIRED_PLAN = "00000000-0000-0000-0000-000000000002"


def finding_keys(out: str) -> set[str]:
    document = json.loads(out)
    parts = [*document["users"], *document["groups"], *document["skus"]]
    return {f["key"] for part in parts for f in part["findings"]}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda s: s["groups"][0]["assignedLicenses"].append({"skuId": GONE_SKU}),
            f"assignedLicenses[1].skuId: {GONE_SKU} is not a SKU in subscribedSkus",
            id="a-sku-the-tenant-no-longer-has",
        ),
        pytest.param(
            lambda s: s["groups"][0]["assignedLicenses"][0]["disabledPlans"].append(RETIRED_PLAN),
            f"disabledPlans: {RETIRED_PLAN} is not a service plan of ENTERPRISEPACK",
            id="a-disabled-plan-the-sku-lacks",
        ),
    ],
)
def test_a_group_license_graph_keeps_after_the_tenant_lost_it_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, expected: str
) -> None:
    # A group keeps its assignedLicenses when the subscription is gone from subscribedSkus, or
    # a plan is gone from the SKU: Graph returns them, so the tenant is evaluated, nobody is
    # reported pending for a product Entra cannot assign, nor mismatched for a plan that no
    # longer exists.
    _, healthy, _ = run(capsys, "--snapshot", str(DEMO), "--format", "json")
    document = demo()
    mutate(document)

    path = write(tmp_path, document)

    status, out, err = run(capsys, "--snapshot", path, "--format", "json")

    assert status == 0
    assert_shows(err, "warning:", "group 'Licensing_Office365_E3_Base'", expected)
    assert finding_keys(out) == finding_keys(healthy)
    assert run(capsys, "--snapshot", path)[0] == 0  # the table names the group's products too


@pytest.mark.parametrize("members", ["absent", None, {}])
def test_a_licensed_group_without_a_members_list_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], members: Any
) -> None:
    snapshot = demo()
    if members == "absent":
        del snapshot["groups"][0]["members"]
    else:
        snapshot["groups"][0]["members"] = members

    status, out, err = run(capsys, "--snapshot", write(tmp_path, snapshot))

    assert status == 2
    assert out == ""
    assert_shows(err, "group 'Licensing_Office365_E3_Base'", "missing required list 'members'")


def test_an_explicitly_empty_member_list_is_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = demo()
    snapshot["groups"][0]["members"] = []
    unlicensed = next(g for g in snapshot["groups"] if not g.get("assignedLicenses"))
    del unlicensed["members"]  # an unlicensed group's members do not matter

    status, _, err = run(capsys, "--snapshot", write(tmp_path, snapshot), "--format", "json")

    assert status in (0, 1)
    assert "error:" not in err


def test_a_missing_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--snapshot", str(tmp_path / "absent.json"))

    assert status == 2
    assert "cannot read the snapshot" in err


@pytest.mark.parametrize(
    "encoding",
    [
        pytest.param("utf-8-sig", id="UTF-8 with BOM (Notepad, Set-Content -Encoding UTF8)"),
        pytest.param("utf-16", id="UTF-16 (Windows PowerShell: snapshot > tenant.json)"),
    ],
)
def test_a_snapshot_saved_by_windows_tools_is_evaluated(
    encoding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "tenant.json"
    saved.write_text(DEMO.read_text(encoding="utf-8"), encoding=encoding)
    expected = run(capsys, "--snapshot", str(DEMO))

    assert run(capsys, "--snapshot", str(saved)) == expected


def test_the_console_script_and_python_dash_m_agree() -> None:
    """`python -m shared` is the documented twin of `license-guard`."""
    completed = subprocess.run(
        [sys.executable, "-m", "shared", "evaluate", "--snapshot", str(DEMO), "--format", "json"],
        capture_output=True,
        check=True,
    )

    assert len(json.loads(completed.stdout)["users"]) == len(demo()["users"])


def test_help_names_the_formats() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "shared", "evaluate", "--help"], capture_output=True, check=True
    )

    assert b"table,json,csv" in completed.stdout


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_lingering_exchange_plan_1_and_2_conflict_says_to_reprocess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    """Isaiah Langer's E3 fails with MutuallyExclusiveViolation against his direct Office 365
    E1; with E1's SharePoint disabled only the Exchange Online pair Microsoft has since
    allowed is left to explain it (shared/data/plan-conflicts.csv, status lifted)."""
    document = demo()
    [isaiah] = [u for u in document["users"] if u["displayName"] == "Isaiah Langer"]
    sharepoint_plan_1 = "c7699d2e-19aa-44de-8edf-1736da088ca1"
    isaiah["assignedLicenses"][0]["disabledPlans"] = [sharepoint_plan_1]
    isaiah["licenseAssignmentStates"][0]["disabledPlans"] = [sharepoint_plan_1]

    status, out, _ = run(capsys, "--snapshot", write(tmp_path, document), "--format", output)

    assert status == 0
    assert "Reprocess the user: Microsoft says to reprocess a conflict" in out
    assert "never resolves" not in out
