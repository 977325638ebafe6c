"""`license-guard reprocess` against graphsim on loopback and Azurite: the admin's one-command
fix, honouring mode, kill switch, allow-list and the brake like the service's own writes.

Reprocess is POST /users/{id}/reprocessLicenseAssignment; graphsim records it in the directory
audit log as 'Change user license' (as Entra does), which is what these tests read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devhost.azurite import AzuriteEndpoints
from devhost.stack import GRAPH_TOKEN, load_tenant
from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from graphsim.tokens import mint
from shared.cli.main import EXIT_BAD_INPUT, main
from tests.demo_tenant import E3_BASE
from tests.service.world import BASE_ENV

EMS_GROUP = "Licensing_Office365_EMS_E3"
IN_ERROR = {"Irvin Sayers", "Joni Sherman", "Pradeep Gupta"}
BAD_GRAPH_URL = "https://graph.microsoft.con/v1.0"  # a typo: no Graph cloud


@pytest.fixture
def graph() -> Iterator[str]:
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        yield url


@pytest.fixture
def settings(azurite: AzuriteEndpoints, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.delenv("WRITES_DISABLED", raising=False)
    monkeypatch.delenv("ACT_GROUP_ALLOWLIST", raising=False)
    return monkeypatch


@dataclass
class ReprocessCli:
    """`license-guard reprocess` against graphsim, with the service's settings in the
    environment, and graphsim's audit log of the reprocess calls it got."""

    graph: str
    environment: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def reprocess(self, *args: str, **settings: str) -> tuple[int, dict]:
        """The exit status and JSON document of `reprocess args` with `settings` set too."""
        for name, value in settings.items():
            self.environment.setenv(name, value)
        options = ("--format", "json", "--graph-base-url", self.graph, "--token", GRAPH_TOKEN)
        status = main(["reprocess", *args, *options])
        return status, json.loads(self.capsys.readouterr().out)

    def audited_users(self) -> list[str]:
        response = httpx.get(
            f"{self.graph}/auditLogs/directoryAudits",
            headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
        )
        return [
            str(t.get("displayName"))
            for entry in response.json()["value"]
            if entry.get("activityDisplayName") == "Change user license"
            for t in entry.get("targetResources") or []
        ]


@pytest.fixture
def cli(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> ReprocessCli:
    return ReprocessCli(graph, settings, capsys)


def names(document: dict, status: str) -> set[str]:
    return {u["user"].split(" <")[0] for u in document["users"] if u["status"] == status}


def test_observe_mode_allows_nothing_and_says_why(cli: ReprocessCli) -> None:
    status, document = cli.reprocess("--group", EMS_GROUP, LICENSE_GUARD_MODE="observe")

    assert status == 1
    assert names(document, "not allowed") == IN_ERROR
    assert all("mode is observe" in u["detail"] for u in document["users"])
    assert cli.audited_users() == []


def test_dry_run_in_act_mode_lists_the_members_in_error_and_writes_nothing(
    cli: ReprocessCli,
) -> None:
    status, document = cli.reprocess("--group", EMS_GROUP, "--dry-run", LICENSE_GUARD_MODE="act")

    assert status == 0
    assert document["dryRun"] is True
    assert names(document, "would reprocess") == IN_ERROR
    details = {u["user"].split(" <")[0]: u["detail"] for u in document["users"]}
    # EMS has 5 seats, 5 consumed: the seat prediction warns before the write.
    assert "no free seat of EMS now: expect CountViolation again" in details["Irvin Sayers"]
    assert "no free seat" not in details["Pradeep Gupta"]
    assert cli.audited_users() == []


def test_act_mode_reprocesses_the_group_members_in_error(cli: ReprocessCli) -> None:
    status, document = cli.reprocess(
        "--group", EMS_GROUP, LICENSE_GUARD_MODE="act", REPROCESS_RATE_PER_MIN="60"
    )

    assert status == 0
    assert names(document, "called") | names(document, "queued (braked)") == IN_ERROR
    assert set(cli.audited_users()) == names(document, "called")
    assert names(document, "called")


def test_the_kill_switch_stops_a_user_reprocess(cli: ReprocessCli) -> None:
    status, document = cli.reprocess(
        "--user", "irvin.sayers@contoso.com", LICENSE_GUARD_MODE="act", WRITES_DISABLED="true"
    )

    assert status == 1
    assert names(document, "not allowed") == {"Irvin Sayers"}
    assert "WRITES_DISABLED" in document["users"][0]["detail"]
    assert cli.audited_users() == []


def test_a_group_outside_the_allow_list_is_not_written(cli: ReprocessCli) -> None:
    status, document = cli.reprocess(
        "--user",
        "irvin.sayers@contoso.com",
        "isaiah.langer@contoso.com",
        LICENSE_GUARD_MODE="act",
        ACT_GROUP_ALLOWLIST=E3_BASE,
    )

    assert status == 1
    assert names(document, "not allowed") == {"Irvin Sayers"}
    assert names(document, "called") == {"Isaiah Langer"}
    assert cli.audited_users() == ["Isaiah Langer"]


def test_unknown_and_healthy_users_are_reported_not_written(cli: ReprocessCli) -> None:
    status, document = cli.reprocess(
        "--user", "nobody@contoso.com", "alannah.shaw@contoso.com", LICENSE_GUARD_MODE="act"
    )

    assert status == 1
    assert {u["status"] for u in document["users"]} == {"not found", "nothing to reprocess"}
    assert cli.audited_users() == []


def test_an_unknown_group_is_one_line_and_exit_2(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["reprocess", "--group", "No such group", "--graph-base-url", graph, "--token", GRAPH_TOKEN]
    )
    err = capsys.readouterr().err

    assert status == EXIT_BAD_INPUT
    assert err.splitlines()[-1] == (
        "license-guard: error: group 'No such group' is not a licensed group of the tenant"
    )


def test_a_graph_url_of_no_graph_cloud_is_one_line_and_exit_2(
    settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Exit 1 means "a user was not reprocessed": a mistyped URL must not look like that.
    status = main(
        ["reprocess", "--user", "irvin.sayers@contoso.com", "--graph-base-url", BAD_GRAPH_URL]
    )
    err = capsys.readouterr().err

    assert status == EXIT_BAD_INPUT
    assert len(err.splitlines()) == 1
    assert err.startswith("license-guard: error: GRAPH_BASE_URL")
    assert "is not a Microsoft Graph host" in err


def test_an_admin_can_reprocess_the_same_user_again(cli: ReprocessCli) -> None:
    """The on-call step: seats bought, `reprocess` the users again. A manual request is the
    admin's decision: an earlier manual reprocess of the same finding must not refuse it."""
    act = {"LICENSE_GUARD_MODE": "act", "REPROCESS_RATE_PER_MIN": "60"}
    first, _ = cli.reprocess("--user", "pradeep.gupta@contoso.com", **act)
    second, document = cli.reprocess("--user", "pradeep.gupta@contoso.com", **act)

    assert (first, second) == (0, 0)
    assert [u["status"] for u in document["users"]] == ["called"]
    assert cli.audited_users().count("Pradeep Gupta") == 2


def test_ids_pasted_upper_case_from_powershell_work(cli: ReprocessCli) -> None:
    """Get-MgUser and Get-MgGroup print ids as given; an admin may paste them upper-case, in
    the command and in ACT_GROUP_ALLOWLIST, and Graph finds the objects whatever the case."""
    tenant = load_tenant()
    irvin = next(u["id"] for u in tenant["users"] if u["displayName"] == "Irvin Sayers")
    ems = next(g["id"] for g in tenant["groups"] if g["displayName"] == EMS_GROUP)
    act = {"LICENSE_GUARD_MODE": "act", "ACT_GROUP_ALLOWLIST": ems.upper()}

    by_user = cli.reprocess("--user", irvin.upper(), "--dry-run", **act)
    by_group = cli.reprocess("--group", ems.upper(), "--dry-run", **act)

    assert by_user[0] == by_group[0] == 0
    assert names(by_user[1], "would reprocess") == {"Irvin Sayers"}
    assert names(by_group[1], "would reprocess") == IN_ERROR


def test_graph_refusing_the_admins_reprocess_says_what_the_sign_in_needs(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sign-in that may read the tenant but not reprocess (no License Administrator role):
    Graph answers the write 403. The one line says which write was refused and what the
    sign-in needs, not that the tenant could not be read (it was)."""
    settings.setenv("LICENSE_GUARD_MODE", "act")
    reads = ["User.Read.All", "Group.Read.All", "Organization.Read.All"]
    reader = mint(GRAPH_TOKEN, {"roles": reads})
    status = main(
        [
            "reprocess",
            "--user",
            "irvin.sayers@contoso.com",
            "--graph-base-url",
            graph,
            "--token",
            reader,
        ]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]

    assert status == EXIT_BAD_INPUT
    assert len(err) == 1
    assert "cannot read the tenant" not in err[0]
    assert "Graph refused to reprocess Irvin Sayers <irvin.sayers@contoso.com>" in err[0]
    assert "403 Authorization_RequestDenied" in err[0]
    assert "License Administrator" in err[0]


def test_a_refusal_part_way_names_the_users_already_reprocessed(
    cli: ReprocessCli, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = load_tenant()
    irvin = next(u["id"] for u in tenant["users"] if u["displayName"] == "Irvin Sayers")
    with SimClient(cli.graph) as sim:
        sim.set_protected(irvin)  # in a restricted management administrative unit
    cli.environment.setenv("LICENSE_GUARD_MODE", "act")
    cli.environment.setenv("REPROCESS_RATE_PER_MIN", "60")
    options = ("--graph-base-url", cli.graph, "--token", GRAPH_TOKEN)
    users = ("pradeep.gupta@contoso.com", "joni.sherman@contoso.com", "irvin.sayers@contoso.com")
    status = main(["reprocess", "--user", *users, *options])  # in this order
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]

    assert status == EXIT_BAD_INPUT
    assert len(err) == 1  # the log lines of the calls made aside
    assert "Graph refused to reprocess Irvin Sayers" in err[0]
    assert "restricted management administrative unit" in err[0]
    # the two called (or queued through the brake) before him: the admin learns what was done
    done = err[0].split("before it: ", 1)[-1]
    assert {name.split(" <")[0] for name in done.split(", ")} == IN_ERROR - {"Irvin Sayers"}
    assert "Irvin Sayers" not in cli.audited_users()


def test_a_upn_starting_with_dollar_is_found(
    settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A UPN may start with `$`; Graph finds such a user only as `/users('$x@y.com')`
    (`/users/$x@y.com` is 400: learn.microsoft.com/graph/api/user-get), and graphsim
    answers so too. `--user` with it reads the user, as with any other UPN."""
    tenant = load_tenant()
    irvin = next(u for u in tenant["users"] if u["displayName"] == "Irvin Sayers")
    irvin["userPrincipalName"] = "$irvin.o'sayers@contoso.com"
    settings.setenv("LICENSE_GUARD_MODE", "act")
    with serve_in_thread(tenant, token=GRAPH_TOKEN) as graph:
        options = ("--graph-base-url", graph, "--token", GRAPH_TOKEN, "--format", "json")
        status = main(["reprocess", "--dry-run", "--user", irvin["userPrincipalName"], *options])
    document = json.loads(capsys.readouterr().out)

    assert status == 0
    assert names(document, "would reprocess") == {"Irvin Sayers"}


def test_a_user_key_that_names_no_single_user_is_not_found(cli: ReprocessCli) -> None:
    """An empty `--user ""` (a shell variable left unset) read `/users/`, the whole collection,
    and one with a `/` a relationship of a user (`x@y/memberOf`, its `%2F` decoded as a
    separator): neither names a user, so each is "not found", not a broken document."""
    status, document = cli.reprocess(
        "--dry-run", "--user", "", "irvin.sayers@contoso.com/memberOf", LICENSE_GUARD_MODE="act"
    )

    assert status == 1
    assert [u["status"] for u in document["users"]] == ["not found", "not found"]
