"""The nightly reconciliation: baseline, idempotence, resumption, and what it writes."""

from __future__ import annotations

import json

import pytest

from shared.ports.directory import DirectoryError
from shared.ports.queues import RECOMPUTE_USERS, REPROCESS_USER
from shared.render.paths import CSV_HEADER
from shared.service.reconcile.run_state import LAST, RUN
from shared.service.stores import ServiceState
from tests.csv_files import csv_rows
from tests.demo_tenant import ALEX, E3_BASE, ENTERPRISEPACK, IRVIN, JONI, NESTOR, SALES_TEAM
from tests.reconcile.conftest import (
    PAGE,
    Nightly,
    SmallPages,
    crashed_at,
    killed_after_two_pages,
    mailbox_lost_after_a_baseline,
)
from tests.service.world import build_world

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


def open_keys(nightly: Nightly) -> set[str]:
    return {
        str(e.fields["key"])
        for e in nightly.world.svc.tables.findings.query_all()
        if not e.fields.get("resolvedAt")
    }


def report(nightly: Nightly, result_blobs: list[str], suffix: str) -> bytes:
    [name] = [n for n in result_blobs if n.endswith(suffix)]
    data = nightly.blobs.get(name)
    assert data is not None
    return data


async def test_the_first_run_is_a_baseline_that_records_everything_and_queues_nothing(
    act_nightly: Nightly,
) -> None:
    result = await act_nightly.run()

    assert result.status == "done"
    assert result.baseline
    assert result.users == 23
    assert {f"{IRVIN}|", f"{JONI}|", f"{NESTOR}|"} <= {k[:37] for k in open_keys(act_nightly)}
    assert result.new_findings == len(open_keys(act_nightly))
    assert act_nightly.world.messages(REPROCESS_USER) == []
    assert act_nightly.world.messages(RECOMPUTE_USERS) == []
    assert result.summary is not None
    assert result.summary.baseline


async def test_a_second_firing_the_same_day_does_nothing(act_nightly: Nightly) -> None:
    first = await act_nightly.run()
    requests = act_nightly.directory.request_count

    second = await act_nightly.run()

    assert second.status == "skipped"
    assert second.run_id == first.run_id
    assert act_nightly.directory.request_count == requests


async def test_a_rerun_over_an_unchanged_tenant_adds_nothing_queues_nothing_mails_nothing(
    act_nightly: Nightly,
) -> None:
    await act_nightly.run()
    act_nightly.world.clock.advance(DAY)
    acting = await act_nightly.run()  # the first run that may act
    act_nightly.world.messages(REPROCESS_USER)
    act_nightly.world.messages(RECOMPUTE_USERS)
    keys = open_keys(act_nightly)

    rerun = await act_nightly.run(force=True)

    assert not acting.baseline
    assert rerun.status == "done"
    assert rerun.new_findings == 0
    assert rerun.resolved_findings == 0
    assert open_keys(act_nightly) == keys
    assert act_nightly.world.messages(REPROCESS_USER) == []
    assert act_nightly.world.messages(RECOMPUTE_USERS) == []
    sent = ServiceState(act_nightly.world.svc.tables.servicestate).get("reconcile-summary-sent")
    assert sent is not None
    assert sent.fields["runId"] == acting.run_id


async def test_a_run_killed_after_page_k_resumes_to_the_same_result(nightly: Nightly) -> None:
    reference = Nightly(build_world(fake=SmallPages))
    expected = await reference.run()

    await killed_after_two_pages(nightly)
    state = ServiceState(nightly.world.svc.tables.servicestate).get(RUN)
    assert state is not None
    assert state.fields["phase"] == "users"
    pages_before = nightly.directory.requests["users_page"]

    resumed = await nightly.run()

    assert resumed.resumed
    assert resumed.run_id == state.fields["runId"]
    assert nightly.directory.requests["users_page"] - pages_before == 5 - 2
    assert resumed.users == expected.users == 23
    assert open_keys(nightly) == open_keys(reference)
    assert resumed.new_findings == expected.new_findings
    paths = report(nightly, resumed.report_blobs, "paths.csv")
    assert paths == report(reference, expected.report_blobs, "paths.csv")
    assert ServiceState(nightly.world.svc.tables.servicestate).get(LAST) is not None


async def test_a_resume_whose_next_link_graph_refuses_starts_the_users_over(
    nightly: Nightly,
) -> None:
    """A run cut short resumes from its checkpoint's nextLink an hour, or a night, later; Graph
    may refuse that link by then (400 `Directory_ExpiredPageToken`: a directory page token
    expires). The resume failed at the same call on every later firing, so no night ever ran
    again; now the users phase starts over from the first page, once."""
    reference = Nightly(build_world(fake=SmallPages))
    expected = await reference.run()
    await killed_after_two_pages(nightly)
    stale = ServiceState(nightly.world.svc.tables.servicestate).get(RUN)
    assert stale is not None
    assert stale.fields["nextLink"]
    refused: list[str] = []

    def refuses_the_stale_link(next_link: str | None) -> Exception | None:
        if next_link != stale.fields["nextLink"] or refused:  # a fresh one is fine
            return None
        refused.append(next_link)
        return DirectoryError(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in "
            "your request.",
        )

    nightly.directory.users_page_fault = refuses_the_stale_link
    pages_before = nightly.directory.requests["users_page"]

    resumed = await nightly.run()

    assert refused
    assert resumed.status == "done"
    assert resumed.run_id == stale.fields["runId"]
    # the refused stale link, then all five pages again
    assert nightly.directory.requests["users_page"] - pages_before == 1 + 5
    assert resumed.users == expected.users == 23
    assert open_keys(nightly) == open_keys(reference)
    assert resumed.new_findings == expected.new_findings
    paths = report(nightly, resumed.report_blobs, "paths.csv")
    assert paths == report(reference, expected.report_blobs, "paths.csv")


async def test_the_paths_report_has_the_cores_header_and_a_row_per_path(nightly: Nightly) -> None:
    result = await nightly.run()

    rows = csv_rows(report(nightly, result.report_blobs, "paths.csv"))
    document = json.loads(report(nightly, result.report_blobs, "evaluation.json"))

    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) > 23
    assert len(document["users"]) == 23
    assert {s["skuPartNumber"] for s in document["skus"]} >= {"ENTERPRISEPACK", "EMS"}
    assert PAGE < 23


async def test_a_user_who_loses_the_mailbox_between_nights_is_alerted_at_once() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    nightly.directory.sent_mail.clear()

    await nightly.run()

    subjects = [m["message"]["subject"] for m in nightly.directory.sent_mail]
    assert any("data-loss risk for 1 user(s)" in s for s in subjects), subjects


async def test_the_night_finds_a_mailbox_on_its_way_out_without_the_sku_cache() -> None:
    """Alex left E3 Base, whose Exchange plan Graph still shows him holding: the night finds
    the loss from the SKUs it read, not only once the recompute's SKU cache is filled."""
    nightly = Nightly(build_world(fake=SmallPages, BASELINE="off"))
    assert ServiceState(nightly.world.svc.tables.servicestate).skus() == ({}, None)

    await nightly.run()

    codes = {e.fields["code"] for e in nightly.world.svc.tables.findings.query(ALEX)}
    assert "DataLossRisk" in codes


async def test_a_group_nested_in_a_licensed_group_is_reported_and_resolved(
    nightly: Nightly,
) -> None:
    """The demo nests Sales_Team in the E3 Base group: the member read sees it, the nightly
    reads its members and records NestedGroupMember on the licensed group, with the users it
    leaves unlicensed; once the nesting is undone the finding is resolved."""
    await nightly.run()

    nested = [
        e.fields
        for e in nightly.world.svc.tables.findings.query_all()
        if e.fields.get("code") == "NestedGroupMember" and not e.fields.get("resolvedAt")
    ]
    assert [str(f["key"]).split("|")[0] for f in nested] == [f"group:{E3_BASE}"]
    assert "Sales_Team" in str(nested[0]["message"])
    assert "1 user(s) in 'Sales_Team' get nothing" in str(nested[0]["message"])
    # E3 Base is synced from on-premises: its membership is changed there, not in Entra
    assert "synced from on-premises" in str(nested[0]["remedy"])
    assert "Entra admin center" not in str(nested[0]["remedy"])

    nightly.directory.remove_member(E3_BASE, SALES_TEAM)
    nightly.world.clock.advance(DAY)
    result = await nightly.run()

    assert result.status == "done"
    assert not [
        e
        for e in nightly.world.svc.tables.findings.query_all()
        if e.fields.get("code") == "NestedGroupMember" and not e.fields.get("resolvedAt")
    ]


async def test_a_dry_run_names_what_it_would_resolve_without_ledger_keys(
    nightly: Nightly,
) -> None:
    """The dry run reads the open findings once (a table scan) and names users, products and
    groups in its plan; a finding that no longer holds is a 'resolve finding' line by name."""
    await nightly.run()
    nightly.directory.remove_member(E3_BASE, NESTOR)

    result = await nightly.run(dry_run=True, force=True)

    resolved = [line for line in result.planned if line.startswith("resolve finding ")]
    assert any(
        line.startswith("resolve finding UniquenessViolation, Nestor Wilke <")
        and "'Licensing_Office365_E3_Base'" in line
        for line in resolved
    ), resolved
    assert not any("|" in line for line in result.planned)
    assert result.resolved_findings == len(resolved)


async def test_a_dry_run_gives_its_reprocess_reasons_by_name(nightly: Nightly) -> None:
    """The policy writes its reasons with ids (the core knows no names); the plan's lines name
    the group and the product, as the rest of the plan does."""
    await nightly.run()

    result = await nightly.run(dry_run=True, force=True)

    reprocess = [line for line in result.planned if "reprocess " in line]
    assert any(
        "because group 'Licensing_Office365_E3_Base' finished processing" in line
        and "persists for Office 365 E3 (ENTERPRISEPACK)" in line
        for line in reprocess
    ), reprocess
    assert not any(E3_BASE in line or ENTERPRISEPACK in line for line in reprocess), reprocess


async def test_a_run_that_died_after_done_is_not_run_again_the_same_day(nightly: Nightly) -> None:
    """The host died between marking the run done and recording it as the date's last: the
    next firing completes the record (and prunes the working set) instead of scanning again."""
    await crashed_at(nightly, "reconcile.after_done")
    run = ServiceState(nightly.world.svc.tables.servicestate).get(RUN)
    assert run is not None
    requests = nightly.directory.request_count

    again = await nightly.run()

    assert again.status == "skipped"
    assert again.run_id == run.fields["runId"]
    assert nightly.directory.request_count == requests
    last = ServiceState(nightly.world.svc.tables.servicestate).get(LAST)
    assert last is not None
    assert last.fields["runId"] == run.fields["runId"]
    assert nightly.blobs.list("nightly-runs/") == []
