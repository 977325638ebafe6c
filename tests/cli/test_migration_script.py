"""`report migration --script ps1|sh`: a reviewed-by-human script that removes only the direct
assignments proven safe, with the reason as a comment, and refuses the rest (on the demo).

Removal is POST /users/{id}/assignLicense with removeLicenses
(https://learn.microsoft.com/en-us/graph/api/user-assignlicense); Set-MgUserLicense is its
Microsoft Graph PowerShell cmdlet."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.main import EXIT_OK, main
from tests.cli.output import assert_shows
from tests.demo_tenant import DEMO, E3_BASE, ENTERPRISEPACK, EXCHANGE_S_ENTERPRISE, MEGAN

REMOVE_PS = "Remove-CoveredDirectLicense"
CONTOSO = "8330943b-f203-51ad-97a1-09287ed9c928"
"""The demo snapshot's organization (tenant) id."""


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

    at = next(i for i, line in enumerate(lines) if line.startswith(REMOVE_PS))
    assert lines[at].startswith(f"{REMOVE_PS} -UserId '{MEGAN}' -SkuId '{ENTERPRISEPACK}' ")
    assert lines[at - 2] == "# Megan Bowen <megan.bowen@contoso.com>: remove direct ENTERPRISEPACK"
    assert "'Licensing_Office365_E3_Base' (Active, no error)" in lines[at - 1]
    assert sum(line.startswith(REMOVE_PS) for line in lines) == 1
    assert (
        "    Set-MgUserLicense -UserId $UserId -AddLicenses @() -RemoveLicenses @($SkuId) "
        "| Out-Null"
    ) in lines
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
    assert "GRAPH_USERS='https://graph.microsoft.com/v1.0/users'" in text
    assert 'az rest --method POST --uri "$GRAPH_USERS/$1/assignLicense"' in text
    assert f"remove_covered_direct '{MEGAN}' '{ENTERPRISEPACK}' " in text
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
    group_state["disabledPlans"] = [*group_state["disabledPlans"], EXCHANGE_S_ENTERPRISE]
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot))

    text = script(capsys, "ps1", path)

    assert not any(line.startswith(REMOVE_PS) for line in text.splitlines())
    assert "Megan Bowen <megan.bowen@contoso.com>: direct ENTERPRISEPACK: not yet" in text


# `az` as the sh script meets it: GET answers the verdict the script's JMESPath test would give
# on the user's states now ('remove', 'gone' or 'keep', kept in $AZ_STATE), or fails for a user
# deleted since the snapshot; POST removes the direct assignment, and fails as Graph does when
# only the inherited one is left.
FAKE_AZ = """#!/bin/sh
echo "$*" >> "$AZ_LOG"
case "$*" in
  "account show"*) cat "$AZ_TENANT" ;;
  *"--method GET"*)
    if [ "$(cat "$AZ_STATE")" = deleted ]; then
      echo "Not Found({'error': {'code': 'Request_ResourceNotFound'}})" >&2
      exit 1
    fi
    cat "$AZ_STATE" ;;
  *"--method POST"*)
    if [ "$(cat "$AZ_STATE")" = gone ]; then
      echo "Bad Request({'error': {'message': 'User license is inherited from a group membership \
and it cannot be removed directly from the user.'}})" >&2
      exit 1
    fi
    echo gone > "$AZ_STATE" ;;
esac
"""


def run_sh(
    text: str, tmp_path: Path, state: str, tenant: str = CONTOSO, args: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the sh script against the fake az, signed in to `tenant`, with the user's paths in
    `state`; the az calls (Graph's, without the sign-in check)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    (tmp_path / "remove.sh").write_text(text)
    (tmp_path / "state").write_text(state + "\n")
    (tmp_path / "tenant").write_text(tenant + "\n")
    log = tmp_path / "az.log"
    log.write_text("")
    shell = shutil.which("sh")
    assert shell is not None
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "AZ_STATE": str(tmp_path / "state"),
        "AZ_TENANT": str(tmp_path / "tenant"),
        "AZ_LOG": str(log),
    }
    ran = subprocess.run(
        [shell, str(tmp_path / "remove.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    calls = [c for c in log.read_text().splitlines() if not c.startswith("account show")]
    return ran, "".join(c + "\n" for c in calls)


def test_the_sh_script_can_be_run_again_after_it_removed_the_assignment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Run, then run again (a partial run retried): Graph refuses to remove a license that is
    only inherited, and under `set -eu` that refusal stopped the script at its first line, so
    nothing after it ran again. The second run skips what is already done."""
    text = script(capsys, "sh")

    first, calls = run_sh(text, tmp_path, "remove")
    assert first.returncode == 0, first.stderr
    assert f"users/{MEGAN}/assignLicense" in calls

    again, calls = run_sh(text, tmp_path, "gone")
    assert again.returncode == 0, again.stderr
    assert "--method POST" not in calls
    assert f"skipped {MEGAN}: no direct {ENTERPRISEPACK} left (already removed)" in again.stdout


def test_the_sh_script_keeps_a_direct_assignment_whose_group_path_changed_since_the_snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The script runs days after the snapshot: Megan has since left the group, or its path is
    in error, or it now disables Exchange. Removing her direct E3 then would take her licence
    and, 30 days on, her mailbox; the script checks her states first and keeps it."""
    text = script(capsys, "sh")

    ran, calls = run_sh(text, tmp_path, "keep")

    assert ran.returncode == 0, ran.stderr
    assert "--method POST" not in calls
    assert (
        f"kept direct {ENTERPRISEPACK} of {MEGAN}: its paths changed since the snapshot"
        in ran.stderr
    )
    (get,) = calls.splitlines()
    assert f"users/{MEGAN}?$select=licenseAssignmentStates" in get
    assert f"licenseAssignmentStates[?skuId=='{ENTERPRISEPACK}']" in get
    assert (
        f"[?assignedByGroup=='{E3_BASE}' && state=='Active' && (!error || error=='None') && "
        "sort(disabledPlans)==['57ff2da0-773e-42df-b2af-ffb7a2317929'," in get
    )


def test_the_powershell_removal_is_checked_against_the_paths_the_snapshot_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Megan's direct and group paths of E3 both disable the same four plans: the call carries
    them, and the function removes only while Graph still shows them so, the group path Active
    without error, and skips a direct assignment already gone (the script can run again)."""
    text = script(capsys, "ps1")
    disabled = json.loads(DEMO.read_text())["groups"][0]["assignedLicenses"][0]["disabledPlans"]
    plans = "@(" + ", ".join(f"'{p}'" for p in sorted(disabled)) + ")"

    assert (
        f"{REMOVE_PS} -UserId '{MEGAN}' -SkuId '{ENTERPRISEPACK}' -DirectDisabled {plans} "
        f"-GroupDisabled @{{ '{E3_BASE}' = {plans} }}"
    ) in text.splitlines()
    assert "-Scopes 'LicenseAssignment.ReadWrite.All', 'User.Read.All' -NoWelcome" in text
    assert_shows(
        text,
        "Get-MgUser -UserId $UserId -Property 'licenseAssignmentStates'",
        "} catch {",
        "could not read the user: $_",
        "if ($direct.Count -eq 0) {",
        "(already removed)",
        "$_.AssignedByGroup -eq $groupId -and $_.State -eq 'Active' -and",
        "(-not $_.Error -or $_.Error -eq 'None')",
        "(Test-SamePlans ($path[0].DisabledPlans) $GroupDisabled[$groupId])",
        "if (-not $same) {",
    )


def test_an_id_the_script_would_quote_that_is_not_a_guid_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The disabled plans of Megan's paths go into the script's text now: one that is not a
    GUID could break out of its quotes, so the removal is refused, as for a user or SKU id."""
    snapshot = json.loads(DEMO.read_text())
    megan = next(u for u in snapshot["users"] if u["id"] == MEGAN)
    for state in megan["licenseAssignmentStates"]:
        state["disabledPlans"] = [*state["disabledPlans"], "x'); Remove-MgUser -UserId y #"]
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot))

    text = script(capsys, "ps1", path)

    assert "Remove-MgUser -UserId y" not in text
    assert "Megan Bowen <megan.bowen@contoso.com>: direct ENTERPRISEPACK: would lose an id" in text


def test_the_sh_script_goes_on_past_a_user_deleted_since_the_snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Megan left and was deleted before the script ran: her read fails (404). Under `set -eu`
    that stopped the script there on every run; she is named and the script goes on."""
    text = script(capsys, "sh")

    ran, calls = run_sh(text, tmp_path, "deleted")

    assert ran.returncode == 0, ran.stderr
    assert "--method POST" not in calls
    assert f"kept direct {ENTERPRISEPACK} of {MEGAN}: could not read the user" in ran.stderr


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


def _statements(text: str) -> list[str]:
    """The script's lines that are code: not blank, not comments."""
    lines = text.removeprefix("\ufeff").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_the_powershell_script_honours_whatif_and_confirm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An admin's dry run is `.\\remove.ps1 -WhatIf`. A script without a param block takes
    -WhatIf as an unused argument and removes for real; the script is an advanced script
    (CmdletBinding SupportsShouldProcess: its first statement, after the comments), and each
    removal asks $PSCmdlet.ShouldProcess first, so -WhatIf only says what it would remove and
    -Confirm asks before each one (Set-MgUserLicense supports both, the script passes them on
    through $WhatIfPreference / $ConfirmPreference)."""
    text = script(capsys, "ps1")
    code = _statements(text)

    assert code[:2] == ["[CmdletBinding(SupportsShouldProcess = $true)]", "param()"]
    function = text[text.index("function Remove-CoveredDirectLicense") :]
    function = function[: function.index("\n}\n")]
    assert "    [CmdletBinding(SupportsShouldProcess = $true)]\n    param(" in function
    guard = function.index("if (-not $PSCmdlet.ShouldProcess(")
    removal = function.index("Set-MgUserLicense")
    assert guard < removal
    assert function[guard:removal].count("return") == 1  # declined or -WhatIf: nothing removed
    assert "-WhatIf" in text.split("[CmdletBinding", 1)[0]  # the header says how to dry-run


def test_the_scripts_act_only_in_the_snapshots_tenant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An admin who manages several tenants (a partner, GDAP) is often signed in to another
    one: Connect-MgGraph without -TenantId signs in to the account's home tenant, and az rest
    uses the tenant `az login` chose. Every read then failed ('could not read the user') and
    the script said nothing of why. The PowerShell signs in to the snapshot's tenant; the sh
    script stops before any call when az is signed in to another, and says how to sign in."""
    ps1 = script(capsys, "ps1")
    sh = script(capsys, "sh")

    assert (
        f"Connect-MgGraph -TenantId '{CONTOSO}' -Scopes 'LicenseAssignment.ReadWrite.All', "
        "'User.Read.All' -NoWelcome"
    ) in ps1.splitlines()
    other = "00000000-0000-4000-8000-000000000001"
    ran, calls = run_sh(sh, tmp_path, "remove", tenant=other)
    assert ran.returncode == 1
    assert calls == ""
    assert f"az login --tenant {CONTOSO}" in ran.stderr
    assert other in ran.stderr


def test_a_snapshot_without_its_organization_signs_in_as_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = json.loads(DEMO.read_text())
    document["organization"] = []
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document))

    ps1 = script(capsys, "ps1", snapshot)
    sh = script(capsys, "sh", snapshot)

    assert "Connect-MgGraph -Scopes 'LicenseAssignment.ReadWrite.All'" in ps1
    assert "account show" not in sh


def test_a_refused_removal_says_whether_to_wait_for_the_group_or_fix_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Megan was just added to the group: Entra has not applied its path yet. The refusal
    said the path 'is not Active without error', read as a fault to fix; it is one to wait
    for."""
    document = json.loads(DEMO.read_text())
    megan = next(u for u in document["users"] if u["id"] == MEGAN)
    megan["licenseAssignmentStates"] = [
        s for s in megan["licenseAssignmentStates"] if not s["assignedByGroup"]
    ]
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document))

    text = script(capsys, "ps1", snapshot)

    assert (
        "#   Megan Bowen <megan.bowen@contoso.com>: direct ENTERPRISEPACK: not yet: "
        "Licensing_Office365_E3_Base: Entra has not applied it to the user yet: wait for the "
        "group's processing, then check again"
    ) in text.splitlines()


def test_the_sh_script_has_a_dry_run_and_refuses_arguments_it_does_not_know(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The sh script ignored its arguments: `sh remove.sh --dry-run` (or -WhatIf, as for the
    PowerShell one) removed for real. --dry-run reads each user and says what it would
    remove; any other argument stops it before the first call."""
    text = script(capsys, "sh")

    dry, calls = run_sh(text, tmp_path, "remove", args=("--dry-run",))
    assert dry.returncode == 0, dry.stderr
    assert "--method GET" in calls
    assert "--method POST" not in calls
    assert f"would remove direct {ENTERPRISEPACK} of {MEGAN} (--dry-run)" in dry.stdout

    for wrong in ("-WhatIf", "--what-if", "now"):
        ran, calls = run_sh(text, tmp_path, "remove", args=(wrong,))
        assert ran.returncode == 2
        assert calls == ""
        assert "usage: sh remove.sh [--dry-run]" in ran.stderr


# `az` that answers GET with the JMESPath `--query` the script passes, evaluated by the library
# az evaluates it with, on the user's licenseAssignmentStates in $AZ_STATES (Graph's JSON);
# POST is logged. The script's shell quoting and its JMESPath test are what run.
JMESPATH_AZ = """#!{python}
import json, os, sys
import jmespath
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["account", "show"]:
    print(os.environ["AZ_TENANT"])
elif "GET" in args:
    states = json.load(open(os.environ["AZ_STATES"]))
    print(jmespath.search(args[args.index("--query") + 1], {{"licenseAssignmentStates": states}}))
"""


def _megan_states() -> list[dict[str, object]]:
    megan = next(u for u in json.loads(DEMO.read_text())["users"] if u["id"] == MEGAN)
    states: list[dict[str, object]] = megan["licenseAssignmentStates"]
    return states


def _group(states: list[dict[str, object]]) -> dict[str, object]:
    return next(s for s in states if s["assignedByGroup"])


def _changed(change: object) -> list[dict[str, object]]:
    states = _megan_states()
    if callable(change):
        change(states)
    return states


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        (None, "removed direct"),
        (lambda s: _group(s).update(error="None"), "removed direct"),
        (lambda s: _group(s)["disabledPlans"].reverse(), "removed direct"),
        (lambda s: s.remove(_group(s)), "its paths changed"),
        (lambda s: _group(s).update(state="Error", error="CountViolation"), "its paths changed"),
        (
            lambda s: _group(s)["disabledPlans"].append(EXCHANGE_S_ENTERPRISE),
            "its paths changed",
        ),
        (lambda s: s[0]["disabledPlans"].pop(), "its paths changed"),
        (lambda s: s.remove(next(x for x in s if not x["assignedByGroup"])), "skipped"),
        (lambda s: s.clear(), "skipped"),
    ],
    ids=[
        "as-in-the-snapshot",
        "error-spelled-None",
        "plans-in-another-order",
        "left-the-group",
        "group-path-in-error",
        "group-path-now-disables-exchange",
        "direct-path-changed",
        "direct-already-removed",
        "no-license-left",
    ],
)
def test_the_sh_scripts_check_on_the_users_states_now(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: object, outcome: str
) -> None:
    """The check the sh script makes before each removal, run as az runs it: the fake az of
    the tests above answered a verdict chosen by the test, so a wrong JMESPath test (or its
    shell quoting) could not fail them."""
    text = script(capsys, "sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(JMESPATH_AZ.format(python=sys.executable))
    (bin_dir / "az").chmod(0o755)
    (tmp_path / "remove.sh").write_text(text)
    (tmp_path / "states.json").write_text(json.dumps(_changed(change)))
    log = tmp_path / "az.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "AZ_STATES": str(tmp_path / "states.json"),
        "AZ_TENANT": CONTOSO,
        "AZ_LOG": str(log),
    }

    ran = subprocess.run(
        [str(shutil.which("sh")), str(tmp_path / "remove.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    assert outcome in ran.stdout + ran.stderr
    assert ("--method POST" in log.read_text()) == (outcome == "removed direct")


@pytest.mark.parametrize(
    ("base", "host", "environment", "az_cloud"),
    [
        ("https://graph.microsoft.us/v1.0", "graph.microsoft.us", "USGov", "AzureUSGovernment"),
        (
            "https://dod-graph.microsoft.us/v1.0",
            "dod-graph.microsoft.us",
            "USGovDoD",
            "AzureUSGovernment",
        ),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "microsoftgraph.chinacloudapi.cn",
            "China",
            "AzureChinaCloud",
        ),
    ],
    ids=["gcc-high", "dod", "china"],
)
def test_a_national_cloud_tenants_scripts_talk_to_its_graph(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    base: str,
    host: str,
    environment: str,
    az_cloud: str,
) -> None:
    """The scripts always talked to global Graph: for a tenant in a national cloud (which
    License Guard serves with GRAPH_BASE_URL) Connect-MgGraph signed in to the global cloud
    and az rest called graph.microsoft.com, and every read failed. The cloud comes from
    --graph-base-url, else GRAPH_BASE_URL, as for the live commands."""
    flag = ["--graph-base-url", base]
    assert main(["report", "migration", "--snapshot", str(DEMO), "--script", "ps1", *flag]) == 0
    ps1 = capsys.readouterr().out
    monkeypatch.setenv("GRAPH_BASE_URL", base)
    sh = script(capsys, "sh")

    assert (
        f"Connect-MgGraph -Environment {environment} -TenantId '{CONTOSO}' -Scopes "
        "'LicenseAssignment.ReadWrite.All', 'User.Read.All' -NoWelcome"
    ) in ps1.splitlines()
    assert f"GRAPH_USERS='https://{host}/v1.0/users'" in sh.splitlines()
    assert f"GRAPH_RESOURCE='https://{host}'" in sh.splitlines()
    assert sh.count('--resource "$GRAPH_RESOURCE"') == 2  # the read and the removal
    assert f"az cloud set --name {az_cloud}" in sh


def test_global_graph_and_graphsim_give_the_global_scripts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_BASE_URL", "http://127.0.0.1:8081/v1.0")  # graphsim

    ps1, sh = script(capsys, "ps1"), script(capsys, "sh")

    assert f"Connect-MgGraph -TenantId '{CONTOSO}' -Scopes" in ps1
    assert "GRAPH_USERS='https://graph.microsoft.com/v1.0/users'" in sh.splitlines()
    assert "az cloud set" not in sh


def test_a_graph_base_url_of_no_cloud_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--snapshot", str(DEMO), "--script", "sh", "--graph-base-url", "https://evil.test"]

    status = main(["report", "migration", *args])

    out = capsys.readouterr()
    assert status == 2
    assert out.out == ""
    assert "'evil.test' is not a Microsoft Graph host" in out.err


def test_an_id_with_a_line_break_after_its_guid_is_no_guid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The GUID check ended in `$`, which matches before a final line break: an id 'GUID\\n'
    passed and was quoted into the script across two lines (the tenant id broke the sign-in
    and the sh tenant check). Such an id is refused like any other that is not a GUID."""
    document = json.loads(DEMO.read_text())
    document["organization"][0]["id"] += "\n"
    megan = next(u for u in document["users"] if u["id"] == MEGAN)
    for state in megan["licenseAssignmentStates"]:
        state["disabledPlans"] = [*state["disabledPlans"], "00000000-0000-4000-8000-000000000009\n"]
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(document))

    ps1, sh = script(capsys, "ps1", snapshot), script(capsys, "sh", snapshot)

    assert "-TenantId" not in ps1
    assert "TENANT=" not in sh
    assert not any(line.startswith(REMOVE_PS) for line in ps1.splitlines())
    assert "Megan Bowen <megan.bowen@contoso.com>: direct ENTERPRISEPACK: would lose an id" in ps1
