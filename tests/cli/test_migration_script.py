"""`report migration --script ps1|sh`: a reviewed-by-human script that removes only the direct
assignments proven safe, with the reason as a comment, and refuses the rest (on the demo).

Removal is POST /users/{id}/assignLicense with removeLicenses
(https://learn.microsoft.com/en-us/graph/api/user-assignlicense); Set-MgUserLicense is its
Microsoft Graph PowerShell cmdlet."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.cli.main import EXIT_OK, main
from tests.cli.output import assert_shows

DEMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "demo-snapshot.json"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
MEGAN = "c9de3744-4f46-5deb-a7be-239cc5f1b4a5"
EXCHANGE = "efb87545-963c-4e0d-99df-69c6916d9eb0"


def script(capsys: pytest.CaptureFixture[str], kind: str, snapshot: Path = DEMO) -> str:
    status = main(["report", "migration", "--snapshot", str(snapshot), "--script", kind])
    assert status == EXIT_OK
    return capsys.readouterr().out


def user_id(name: str) -> str:
    users = json.loads(DEMO.read_text())["users"]
    return next(u["id"] for u in users if u["displayName"] == name)


def test_the_powershell_script_removes_the_covered_assignment_with_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = script(capsys, "ps1")
    lines = text.splitlines()

    removal = (
        f"Set-MgUserLicense -UserId '{MEGAN}' -AddLicenses @() -RemoveLicenses @('{E3}') | Out-Null"
    )
    at = lines.index(removal)
    assert lines[at - 2] == "# Megan Bowen <megan.bowen@contoso.com>: remove direct ENTERPRISEPACK"
    assert "'Licensing_Office365_E3_Base' (Active, no error)" in lines[at - 1]
    assert sum(line.startswith("Set-MgUserLicense") for line in lines) == 1
    assert "# 1 removal(s), 2 refused" in text


def test_it_refuses_a_removal_that_would_lose_plans_and_one_with_an_unhealthy_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = script(capsys, "ps1")

    lee, lidia = user_id("Lee Gu"), user_id("Lidia Holloway")
    assert lee not in text  # named in the REFUSED comments, never in a command
    assert lidia not in text
    refused = text.split("# REFUSED (not removed):")[1]
    assert_shows(
        refused,
        "Lee Gu <lee.gu@contoso.com>: direct ENTERPRISEPACK: would lose plans",
        "TEAMS1",
        "Lidia Holloway <lidia.holloway@contoso.com>: direct ENTERPRISEPACK: not yet",
    )


def test_the_sh_script_uses_az_rest_and_is_valid_shell(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = script(capsys, "sh")
    path = tmp_path / "remove.sh"
    path.write_text(text)

    assert text.startswith("#!/bin/sh\n")
    assert (
        f"az rest --method POST --uri 'https://graph.microsoft.com/v1.0/users/{MEGAN}/"
        "assignLicense' --headers 'Content-Type=application/json' "
        f'--body \'{{"addLicenses":[],"removeLicenses":["{E3}"]}}\''
    ) in text
    shell = shutil.which("sh")
    assert shell is not None
    checked = subprocess.run([shell, "-n", str(path)], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_a_display_name_cannot_break_out_of_its_comment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = json.loads(DEMO.read_text())
    megan = next(u for u in document["users"] if u["id"] == MEGAN)
    megan["displayName"] = "Megan\nRemove-MgUser -UserId x #"
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document))

    text = script(capsys, "ps1", snapshot)

    assert not any(line.startswith("Remove-MgUser") for line in text.splitlines())
    assert "# Megan Remove-MgUser -UserId x # <megan.bowen@contoso.com>" in text


def test_it_refuses_a_removal_while_the_group_path_still_disables_a_plan_it_will_enable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The group was just changed to enable Exchange; Graph's state of its path for Megan still
    disables it (a PlanMismatch, not processed yet). Active without error is not enough: the
    removal would take her mailbox until Entra catches up."""
    snapshot = json.loads(DEMO.read_text())
    megan = next(u for u in snapshot["users"] if u["id"] == MEGAN)
    group_state = next(s for s in megan["licenseAssignmentStates"] if s["assignedByGroup"])
    group_state["disabledPlans"] = [*group_state["disabledPlans"], EXCHANGE]
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot))

    text = script(capsys, "ps1", path)

    assert "Set-MgUserLicense" not in text.replace("Connect-MgGraph", "")
    assert "Megan Bowen <megan.bowen@contoso.com>: direct ENTERPRISEPACK: not yet" in text


def test_the_powershell_script_is_utf8_with_a_bom_and_the_sh_script_without(
    tmp_path: Path,
) -> None:
    """Windows PowerShell 5.1 reads a .ps1 without a BOM in the ANSI code page: the names in
    its comments would be garbled. A BOM before the shell script's `#!` would break it."""
    document = json.loads(DEMO.read_text())
    megan = next(u for u in document["users"] if u["id"] == MEGAN)
    megan["displayName"] = "Mégan Bøwen-Łukasik Ёлкина 山田"
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document), encoding="utf-8")
    written = {}
    for kind in ("ps1", "sh"):
        out = tmp_path / f"remove.{kind}"
        args = ["--snapshot", str(snapshot), "--script", kind, "--out", str(out)]
        assert main(["report", "migration", *args]) == EXIT_OK
        written[kind] = out.read_bytes()

    assert written["ps1"].startswith(b"\xef\xbb\xbf# Entra License Guard")
    comment = "# Mégan Bøwen-Łukasik Ёлкина 山田 <megan.bowen@contoso.com>: remove direct"
    assert comment in written["ps1"].decode("utf-8-sig")
    assert written["sh"].startswith(b"#!/bin/sh\n")
    assert comment in written["sh"].decode("utf-8")
