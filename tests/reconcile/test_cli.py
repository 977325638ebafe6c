"""`license-guard snapshot`, `reconcile --dry-run` and `report paths` against graphsim on
loopback (its thread server), through the same code paths the service runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.azurite import AzuriteEndpoints, wipe_storage
from devhost.stack import GRAPH_TOKEN, free_port, load_tenant
from graphsim.server import serve_in_thread
from shared.adapters.blobs import blobs_for
from shared.adapters.graph import ORGANIZATION_SELECT, SKU_SELECT
from shared.adapters.tables import tables_for
from shared.cli.main import main
from shared.ports.directory import GROUP_SELECT
from shared.render.paths import CSV_HEADER
from tests.csv_files import csv_rows
from tests.service.world import BASE_ENV


@pytest.fixture(scope="module")
def graph() -> Iterator[str]:
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        yield url


GROUP_TYPE = "#microsoft.graph.group"


@pytest.fixture
def service_env(azurite: AzuriteEndpoints, monkeypatch: pytest.MonkeyPatch) -> str:
    """The settings `reconcile` needs, on the session's Azurite (wiped first: an earlier test on
    this worker may have recorded the same findings, and a dry run then reports them as
    persisting, not new); its connection string."""
    wipe_storage(azurite.connection_string, containers=True)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string


def live(graph: str, *args: str) -> list[str]:
    return [*args, "--graph-base-url", graph, "--token", GRAPH_TOKEN, "--quiet"]


def test_a_snapshot_of_the_live_tenant_is_one_evaluate_reads(
    graph: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tenant.json"

    status = main(live(graph, "snapshot", "--out", str(out)))
    document = json.loads(out.read_text())
    evaluated = main(["evaluate", "--snapshot", str(out), "--format", "json"])
    result = json.loads(capsys.readouterr().out)

    tenant = load_tenant()
    assert status == 0
    assert evaluated == 0
    assert len(document["users"]) == len(tenant["users"])
    licensed = [g for g in tenant["groups"] if g.get("assignedLicenses")]
    nested = {m["id"] for g in licensed for m in g["members"] if m["@odata.type"] == GROUP_TYPE}
    assert nested  # Contoso nests Sales_Team in the E3 Base group
    assert {g["id"] for g in document["groups"]} == {g["id"] for g in licensed} | nested
    assert all("members" in g for g in document["groups"])
    written = {g["id"]: g for g in document["groups"]}
    for group in licensed:  # group members are kept, as the tenant has them
        assert written[group["id"]]["members"] == group["members"]
    nested_findings = [
        f for g in result["groups"] for f in g["findings"] if f["code"] == "NestedGroupMember"
    ]
    assert len(nested_findings) == 1
    assert "1 user(s) in 'Sales_Team' get nothing" in nested_findings[0]["message"]
    assert document["organization"][0]["id"] == tenant["organization"][0]["id"]
    assert len(result["users"]) == len(tenant["users"])


def graph_get(graph: str, path: str, **params: str) -> list[dict[str, Any]]:
    """GET `path` from graphsim as the service's reads ask for it: the objects it returns."""
    headers = {"Authorization": f"Bearer {GRAPH_TOKEN}"}
    response = httpx.get(f"{graph}/{path}", params=params, headers=headers)
    response.raise_for_status()
    body = response.json()
    assert "@odata.nextLink" not in body  # one page holds the demo tenant's
    return list(body["value"])


def test_a_snapshot_holds_graphs_own_documents_as_get_returns_them(
    graph: str, tmp_path: Path
) -> None:
    """README "Snapshot format": SKUs (appliesTo, the SKU's id...), the organization
    (verifiedDomains...) and the groups (disabledPlans in Graph's order, licenseProcessingState
    as an object...) exactly as GET returned them for the service's $select, not re-made from
    the typed values the service decides on."""
    out = tmp_path / "tenant.json"

    status = main(live(graph, "snapshot", "--out", str(out)))
    document = json.loads(out.read_text())

    assert status == 0
    skus = graph_get(graph, "subscribedSkus", **{"$select": ",".join(SKU_SELECT)})
    assert document["subscribedSkus"] == skus
    assert all(s["appliesTo"] == "User" for s in document["subscribedSkus"])
    organization = graph_get(graph, "organization", **{"$select": ",".join(ORGANIZATION_SELECT)})
    assert document["organization"] == organization
    assert document["organization"][0]["verifiedDomains"]
    licensed = graph_get(
        graph, "groups", **{"$filter": "assignedLicenses/any()", "$select": GROUP_SELECT}
    )
    written = {g["id"]: {k: v for k, v in g.items() if k != "members"} for g in document["groups"]}
    assert [written[str(g["id"])] for g in licensed] == licensed
    plans = [a["disabledPlans"] for g in licensed for a in g["assignedLicenses"]]
    assert any(p != sorted(p) for p in plans)  # Graph's order, which a typed copy would sort


def test_the_paths_report_of_a_live_scan_has_the_cores_header(graph: str, tmp_path: Path) -> None:
    out = tmp_path / "paths.csv"

    status = main(live(graph, "report", "paths", "--out", str(out)))
    rows = csv_rows(out.read_bytes())

    assert status == 0
    assert tuple(rows[0]) == CSV_HEADER
    assert rows.count(list(CSV_HEADER)) == 1
    assert len(rows) > len(load_tenant()["users"]) // 2


def test_reconcile_dry_run_prints_the_plan_and_writes_nothing(
    graph: str, service_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = service_env
    tables = tables_for(storage)
    # The session's Azurite is shared with other tests: compare with what was there before.
    before = len(list(tables.findings.query_all()))
    run_before = tables.servicestate.get("meta", "reconcile-run")
    blobs_before = blobs_for(storage).list("nightly")

    status = main(live(graph, "reconcile", "--dry-run", "--format", "json"))
    result = json.loads(capsys.readouterr().out)

    assert status == 0
    assert result["status"] == "dry-run"
    assert result["users"] == len(load_tenant()["users"])
    assert result["newFindings"] > 0
    assert any(line.startswith("new finding ") for line in result["planned"])
    assert len(list(tables.findings.query_all())) == before
    assert tables.servicestate.get("meta", "reconcile-run") == run_before
    assert blobs_for(storage).list("nightly") == blobs_before


def test_reconcile_dry_run_table_starts_with_a_summary_and_uses_names(
    graph: str, service_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: no raw keys (subject|sku|code|group) in the dry run, a summary first."""

    status = main(live(graph, "reconcile", "--dry-run"))
    lines = capsys.readouterr().out.splitlines()

    assert status == 0
    assert lines[1].startswith("SUMMARY of new findings: ")
    assert lines[2].startswith("  ERROR ")
    assert any(line.startswith("  Top groups x code") for line in lines[:12])
    plan = lines[lines.index("PLAN") + 1 :]
    new = [line for line in plan if line.startswith("  new finding ")]
    assert new
    assert all("|" not in line for line in plan)
    assert any(" CountViolation: " in line and " does not have " in line for line in new)


@pytest.mark.parametrize(
    "command",
    [["snapshot"], ["report", "paths"], ["report", "html", "--live"]],
    ids=["snapshot", "report-paths", "report-html-live"],
)
def test_redirected_progress_shows_users_done_of_the_tenants_count(
    graph: str, tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: the users phase has a total (GET /users/$count), also on a redirected stderr."""
    args = [*command, "--out", str(tmp_path / "out"), "--graph-base-url", graph]

    status = main([*args, "--token", GRAPH_TOKEN])
    lines = capsys.readouterr().err.splitlines()

    users = len(load_tenant()["users"])
    assert status == 0
    assert any(line.startswith(f"users: {users}/{users}, 100%") for line in lines)


def test_reconcile_dry_run_progress_shows_users_done_of_the_tenants_count(
    graph: str, service_env: str, capsys: pytest.CaptureFixture[str]
) -> None:

    status = main(["reconcile", "--dry-run", "--graph-base-url", graph, "--token", GRAPH_TOKEN])
    lines = capsys.readouterr().err.splitlines()

    users = len(load_tenant()["users"])
    assert status == 0
    assert any(line.startswith(f"users: {users}/{users}, 100%") for line in lines)


def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("TENANT_ID", raising=False)

    bad_url = main(["snapshot", "--graph-base-url", "not-a-url", "--token", "t", "--quiet"])
    no_settings = main(["reconcile", "--dry-run", "--graph-base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err

    assert bad_url == 2
    assert no_settings == 2
    assert "not an absolute http(s) URL" in err
    assert "missing required setting(s)" in err


def _wrong_key(azurite: AzuriteEndpoints) -> str:
    """Storage that refuses us (403), as it does a sign-in without the data roles."""
    key = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    return azurite.connection_string.replace(key, "A" * (len(key) - 2) + "==")


def _closed_port(azurite: AzuriteEndpoints) -> str:
    """Storage that does not answer (a wrong account or endpoint)."""
    port = str(free_port())
    connection = azurite.connection_string
    for used in {azurite.blob_port, azurite.queue_port, azurite.table_port}:
        connection = connection.replace(f":{used}/", f":{port}/")
    return connection


@pytest.mark.parametrize("storage", [_wrong_key, _closed_port])
@pytest.mark.parametrize(
    "command", [["reconcile", "--dry-run"], ["reprocess", "--group", "Licensing_Office365_EMS_E3"]]
)
def test_storage_that_refuses_or_does_not_answer_exits_2_with_one_line(
    graph: str,
    azurite: AzuriteEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    storage: Any,
    command: list[str],
) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AzureWebJobsStorage", storage(azurite))
    monkeypatch.setenv("LICENSE_GUARD_MODE", "act")

    status = main(live(graph, *command))
    err = capsys.readouterr().err.splitlines()

    assert status == 2
    assert len(err) == 1
    assert err[0].startswith("license-guard: error: storage: ")


@pytest.mark.parametrize(
    "command", [["snapshot"], ["reconcile"], ["report", "paths"], ["report", "migration"]]
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "--format" in capsys.readouterr().out


@pytest.fixture
def graph_empty_first_page() -> Iterator[str]:
    """graphsim whose first page of users holds no one and a nextLink, as Graph may answer."""
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        faults = url.removesuffix("/v1.0") + "/_sim/faults"
        httpx.put(faults, json={"emptyFirstPages": ["/users"]}).raise_for_status()
        yield url


@pytest.mark.parametrize(
    "command",
    [["report", "paths"], ["report", "paths", "--format", "json"], ["snapshot"]],
    ids=["paths-csv", "paths-json", "snapshot"],
)
def test_a_live_output_is_the_same_when_the_first_page_of_users_is_empty(
    graph: str, graph_empty_first_page: str, tmp_path: Path, command: list[str]
) -> None:
    """The paths CSV's BOM and header were written on every page until one had users."""
    clean, empty_first = tmp_path / "clean", tmp_path / "empty-first"

    status = main(live(graph, *command, "--out", str(clean)))
    again = main(live(graph_empty_first_page, *command, "--out", str(empty_first)))

    assert status == again == 0
    assert empty_first.read_bytes() == clean.read_bytes()


def test_the_nightly_reads_every_user_when_the_first_page_of_users_is_empty(
    graph_empty_first_page: str, service_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(live(graph_empty_first_page, "reconcile", "--format", "json"))
    result = json.loads(capsys.readouterr().out)

    assert status == 0
    assert result["status"] == "done"
    assert result["users"] == len(load_tenant()["users"])
    [paths] = [n for n in result["reports"] if n.endswith("/paths.csv")]
    rows = csv_rows(blobs_for(service_env).get(paths) or b"")
    assert rows.count(list(CSV_HEADER)) == 1
    assert tuple(rows[0]) == CSV_HEADER


@pytest.fixture
def graph_cycling_pages() -> Iterator[str]:
    """graphsim whose pages of users, from the second on, link A -> B -> A for ever: a cycle
    longer than one page, which a check for a page naming itself does not see."""
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        faults = url.removesuffix("/v1.0") + "/_sim/faults"
        cycling = {"emptyFirstPages": ["/users"], "cyclingPages": ["/users"]}
        httpx.put(faults, json=cycling).raise_for_status()
        yield url


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "command",
    [["reconcile"], ["reconcile", "--dry-run"], ["report", "paths"], ["snapshot"]],
    ids=["nightly", "dry-run", "paths", "snapshot"],
)
def test_users_pages_that_go_round_in_a_cycle_end_the_scan_with_one_line(
    graph_cycling_pages: str,
    service_env: str,
    tmp_path: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each `users_page` call checked only that a page did not name itself, so pages A -> B ->
    A were read (and the nightly's settled and counted again) until the process was killed;
    the nightly's timer firing ran to its time budget, checkpointed inside the cycle, and the
    next firing went round again. The scan now stops at the repeated link (a 502, retried by
    the next firing): exit 2 and one line."""
    out = ["--out", str(tmp_path / "out")] if command[0] != "reconcile" else []
    status = main(live(graph_cycling_pages, *command, *out))
    err = capsys.readouterr().err
    assert status == 2
    assert "NextLinkRepeated" in err
    assert "Traceback" not in err


def test_a_reconcile_from_an_admins_shell_deletes_no_reports(
    graph: str, service_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`license-guard reconcile` reads the settings of the shell it runs in, not the app's:
    its REPORT_RETENTION_DAYS is the default (30) where the app may keep the reports a year.
    Deleting reports is the nightly timer's, as pruning the findings history is."""
    blobs = blobs_for(service_env)
    old = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    blobs.put(f"{old}/report.html", b"<html></html>", content_type="text/html")

    status = main(live(graph, "reconcile", "--format", "json"))
    result = json.loads(capsys.readouterr().out)

    assert status == 0
    assert result["status"] == "done"
    assert blobs.get(f"{old}/report.html") == b"<html></html>"
