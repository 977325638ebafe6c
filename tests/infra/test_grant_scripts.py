"""The Graph permission grant scripts agree with the permissions manifest.

Their role tables are generated (`python -m shared.cli.permissions`) and committed between
marker comments; these tests regenerate the blocks and compare, and run the shell script in
--dry-run mode (no `az` needed) for every flag combination.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.adapters.graph_permissions import ALERTS, APP_ROLE_IDS, READ, REPROCESS, grant
from shared.cli.permissions import command, csv_role_ids, render, roles, wanted_sets
from tests.infra.bicep import INFRA
from tests.python_run import run_module

SCRIPTS = INFRA / "scripts"
PRINCIPAL = "11111111-2222-4333-8444-555555555555"
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def generated_block(path: str) -> str:
    text = (SCRIPTS / path).read_text(encoding="utf-8")
    match = re.search(r"# BEGIN GENERATED ROLES\n(.*?)# END GENERATED ROLES\n", text, re.DOTALL)
    assert match, f"{path}: no generated block between the markers"
    return match.group(1)


@pytest.mark.parametrize(
    ("script", "fmt"),
    [("grant-graph-permissions.sh", "sh"), ("grant-graph-permissions.ps1", "ps1")],
)
def test_the_committed_role_table_is_what_the_generator_prints(script: str, fmt: str) -> None:
    flags = {"enable_reprocess": True, "enable_mail": True}
    expected = render(fmt, roles(wanted_sets(**flags)), command(fmt, **flags))

    assert generated_block(script) == expected, (
        f"regenerate: {command(fmt, **flags)} and paste it between the markers of {script}"
    )


def test_the_generator_cli_prints_json_with_names_and_microsoft_ids() -> None:
    out = run_module(
        "shared.cli.permissions", "--format", "json", "--enable-mail", check=True
    ).stdout
    import json

    listed = {r["name"]: r["id"] for r in json.loads(out)["roles"]}
    assert set(listed) == set(grant([READ, ALERTS]))
    assert listed == {name: csv_role_ids()[name] for name in listed}
    assert listed == {name: APP_ROLE_IDS[name] for name in listed}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("reprocess", "mail"), FLAGS)
def test_the_shell_script_dry_run_assigns_exactly_the_manifest_roles(
    reprocess: bool, mail: bool
) -> None:
    args = ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), "--principal-id", PRINCIPAL]
    args += ["--dry-run"] + ["--enable-reprocess"] * reprocess + ["--enable-mail"] * mail
    result = subprocess.run(
        args, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )

    assigned = dict(re.findall(r"^assign (\S+) (\S+)$", result.stdout, re.MULTILINE))
    sets = [READ] + [REPROCESS] * reprocess + [ALERTS] * mail
    assert sorted(assigned) == grant(sets)
    assert assigned == {name: APP_ROLE_IDS[name] for name in assigned}
    assert ("User.ReadWrite.All" in assigned) is reprocess
    assert ("Mail.Send" in assigned) is mail
    assert PRINCIPAL in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    "args", [["--dry-run"], ["--dry-run", "--principal-id", "not-a-guid"], ["--bogus"]]
)
def test_the_shell_script_refuses_bad_arguments_without_calling_azure(args: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "assign " not in result.stdout


def test_the_powershell_script_has_the_same_switches_and_filters_by_set() -> None:
    text = (SCRIPTS / "grant-graph-permissions.ps1").read_text(encoding="utf-8")
    for switch in ("$EnableReprocess", "$EnableMail", "$DryRun", "$PrincipalId"):
        assert switch in text
    assert "New-MgServicePrincipalAppRoleAssignment" in text
    assert "Get-MgServicePrincipal" in text
    assert re.search(r"if \(\$EnableReprocess\) \{ \$enabledSets \+= 'reprocess' \}", text)
    assert re.search(r"if \(\$EnableMail\) \{ \$enabledSets \+= 'alerts' \}", text)


MAIL_WARNING = ("tenant-wide", "New-ApplicationAccessPolicy", "RBAC for Applications")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("mail", [False, True])
def test_granting_the_mail_roles_warns_they_are_tenant_wide_until_a_policy_restricts_them(
    mail: bool,
) -> None:
    """Entra's Mail.ReadWrite/Mail.Send reach every mailbox; only an application access policy
    restricts them. Exchange RBAC for Applications does not: its grants add up with Entra's
    (docs/operations.md "Enable alert mail"), so --enable-mail is for the policy route only. The
    script said "then scope both", as if any scoping afterwards would do."""
    args = ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), "--principal-id", PRINCIPAL]
    args += ["--dry-run"] + ["--enable-mail"] * mail
    result = subprocess.run(
        args, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    help_text = subprocess.run(
        ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout

    warned = result.stdout + result.stderr
    assert all(word in warned for word in MAIL_WARNING) is mail, warned
    assert all(word in help_text for word in MAIL_WARNING), help_text
    ps1 = (SCRIPTS / "grant-graph-permissions.ps1").read_text(encoding="utf-8")
    assert all(word in ps1 for word in MAIL_WARNING)
    assert re.search(r"if \(\$EnableMail\) \{\s*Write-Warning", ps1)


FAKE_AZ = """#!/bin/sh
echo "$*" >> "$AZ_LOG"
case "$1 $2" in
  "ad sp show") echo "graph-sp-object-id" ;;
esac
exit 0
"""


def run_grant_with_fake_az(tmp_path: Path, graph_base_url: str | None) -> tuple[int, list[str]]:
    """The script for real, `az` a stand-in on PATH that logs its arguments."""
    (tmp_path / "az").write_text(FAKE_AZ, encoding="utf-8")
    (tmp_path / "az").chmod(0o755)
    log = tmp_path / "az.log"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "AZ_LOG": str(log)}
    if graph_base_url is not None:
        env["GRAPH_BASE_URL"] = graph_base_url
    result = subprocess.run(
        ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), "--principal-id", PRINCIPAL],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return result.returncode, calls


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    "base",
    [
        None,
        "https://graph.microsoft.com/v1.0",
        "https://graph.microsoft.us/v1.0",
        "https://dod-graph.microsoft.us/v1.0",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
    ],
)
def test_the_shell_script_grants_in_the_clouds_graph_base_url_names(
    tmp_path: Path, base: str | None
) -> None:
    """The app takes its cloud from GRAPH_BASE_URL (an azd variable); the script called the
    global Graph whatever the cloud, so a GCC High or 21Vianet admin could not grant."""
    status, calls = run_grant_with_fake_az(tmp_path, base)

    assert status == 0
    urls = [c.split(" -u ", 1)[1].split()[0] for c in calls if c.startswith("rest ")]
    assert len(urls) == 1 + len(grant([READ]))  # the list, then one POST per role
    expected = base or "https://graph.microsoft.com/v1.0"
    assert all(url.startswith(f"{expected}/servicePrincipals/{PRINCIPAL}/") for url in urls), urls


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_shell_script_sends_the_admins_token_to_no_other_host(tmp_path: Path) -> None:
    status, calls = run_grant_with_fake_az(tmp_path, "https://graph.example.net/v1.0")

    assert status == 2
    assert not any(c.startswith("rest ") for c in calls)


def test_the_powershell_script_connects_to_the_cloud_graph_base_url_names() -> None:
    text = (SCRIPTS / "grant-graph-permissions.ps1").read_text(encoding="utf-8")
    assert "$env:GRAPH_BASE_URL" in text
    for environment in ("Global", "USGov", "USGovDoD", "China"):
        assert f"'{environment}'" in text
    assert re.search(r"Connect-MgGraph .*-Environment \$environment", text)
