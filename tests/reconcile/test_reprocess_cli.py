"""`license-guard reprocess` against graphsim on loopback and Azurite: the admin's one-command
fix, honouring mode, kill switch, allow-list and the brake like the service's own writes.

Reprocess is POST /users/{id}/reprocessLicenseAssignment; graphsim records it in the directory
audit log as 'Change user license' (as Entra does), which is what these tests read back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from devhost.azurite import AzuriteEndpoints
from devhost.stack import GRAPH_TOKEN, load_tenant
from graphsim.server import serve_in_thread
from shared.cli.main import EXIT_BAD_INPUT, main
from tests.service.world import BASE_ENV

EMS_GROUP = "Licensing_Office365_EMS_E3"
IN_ERROR = {"Irvin Sayers", "Joni Sherman", "Pradeep Gupta"}


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


def reprocess(graph: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    status = main(
        ["reprocess", *args, "--format", "json", "--graph-base-url", graph, "--token", GRAPH_TOKEN]
    )
    return status, json.loads(capsys.readouterr().out)


def audited_users(graph: str) -> list[str]:
    response = httpx.get(
        f"{graph}/auditLogs/directoryAudits",
        headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
    )
    return [
        str(t.get("displayName"))
        for entry in response.json()["value"]
        if entry.get("activityDisplayName") == "Change user license"
        for t in entry.get("targetResources") or []
    ]


def names(document: dict, status: str) -> set[str]:
    return {u["user"].split(" <")[0] for u in document["users"] if u["status"] == status}


def test_observe_mode_allows_nothing_and_says_why(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "observe")

    status, document = reprocess(graph, capsys, "--group", EMS_GROUP)

    assert status == 1
    assert names(document, "not allowed") == IN_ERROR
    assert all("mode is observe" in u["detail"] for u in document["users"])
    assert audited_users(graph) == []


def test_dry_run_in_act_mode_lists_the_members_in_error_and_writes_nothing(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "act")

    status, document = reprocess(graph, capsys, "--group", EMS_GROUP, "--dry-run")

    assert status == 0
    assert document["dryRun"] is True
    assert names(document, "would reprocess") == IN_ERROR
    details = {u["user"].split(" <")[0]: u["detail"] for u in document["users"]}
    # EMS has 5 seats, 5 consumed: the seat prediction warns before the write.
    assert "no free seat of EMS now: expect CountViolation again" in details["Irvin Sayers"]
    assert "no free seat" not in details["Pradeep Gupta"]
    assert audited_users(graph) == []


def test_act_mode_reprocesses_the_group_members_in_error(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "act")
    settings.setenv("REPROCESS_RATE_PER_MIN", "60")

    status, document = reprocess(graph, capsys, "--group", EMS_GROUP)

    assert status == 0
    assert names(document, "called") | names(document, "queued (braked)") == IN_ERROR
    assert set(audited_users(graph)) == names(document, "called")
    assert names(document, "called")


def test_the_kill_switch_stops_a_user_reprocess(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "act")
    settings.setenv("WRITES_DISABLED", "true")

    status, document = reprocess(graph, capsys, "--user", "irvin.sayers@contoso.com")

    assert status == 1
    assert names(document, "not allowed") == {"Irvin Sayers"}
    assert "WRITES_DISABLED" in document["users"][0]["detail"]
    assert audited_users(graph) == []


def test_a_group_outside_the_allow_list_is_not_written(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "act")
    settings.setenv("ACT_GROUP_ALLOWLIST", "3fba3687-b188-5d3f-abfd-25fd068d74b0")

    status, document = reprocess(
        graph, capsys, "--user", "irvin.sayers@contoso.com", "isaiah.langer@contoso.com"
    )

    assert status == 1
    assert names(document, "not allowed") == {"Irvin Sayers"}
    assert names(document, "called") == {"Isaiah Langer"}
    assert audited_users(graph) == ["Isaiah Langer"]


def test_unknown_and_healthy_users_are_reported_not_written(
    graph: str, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.setenv("LICENSE_GUARD_MODE", "act")

    status, document = reprocess(
        graph, capsys, "--user", "nobody@contoso.com", "alannah.shaw@contoso.com"
    )

    assert status == 1
    assert {u["status"] for u in document["users"]} == {"not found", "nothing to reprocess"}
    assert audited_users(graph) == []


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
