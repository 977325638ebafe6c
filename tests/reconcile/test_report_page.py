"""The nightly reconciliation writes the health page to the reports container
(`<date>/report.html`, `latest/report.html`) and keeps the night's history record, so the next
night's page counts changes and draws trends."""

from __future__ import annotations

import orjson
import pytest

from shared.adapters.snapshot import parse_snapshot
from shared.render.health_page import render_health_page
from shared.render.health_sources import report_from_snapshot
from shared.render.history import history_name
from shared.service.reconcile.health_report import LATEST_PAGE, page_name
from tests.demo_tenant import E3_BASE
from tests.reconcile.conftest import Nightly
from tests.render.page import Page
from tests.service.world import demo_snapshot

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


def page(nightly: Nightly, name: str) -> Page:
    data = nightly.blobs.get(name)
    assert data is not None, name
    return Page(data.decode("utf-8"))


async def test_the_night_writes_its_page_and_latest_and_a_history_record(nightly: Nightly) -> None:
    result = await nightly.run()
    date = result.date

    dated, latest = nightly.blobs.get(page_name(date)), nightly.blobs.get(LATEST_PAGE)
    record = orjson.loads(nightly.blobs.get(history_name(date)) or b"{}")

    assert dated is not None
    assert dated == latest
    assert nightly.blobs.blobs[LATEST_PAGE][1] == "text/html; charset=utf-8"
    assert {page_name(date), LATEST_PAGE} <= set(result.report_blobs)
    [body] = Page(dated.decode()).all("body")
    assert body["data-users-scanned"] == "23"
    assert result.summary is not None
    assert record["findings_by_code"] == result.summary.findings_by_code
    tiles = {
        t["data-health"]: int(t["data-value"])
        for t in Page(dated.decode()).with_attr("li", "data-health")
    }
    assert record["health"] == {
        "error": tiles["users in error"],
        "stale": tiles["stale"],
        "pending": tiles["pending"],
    }
    assert tiles["users in error"] > 0


async def test_the_next_night_counts_changes_since_the_first_and_draws_two_points(
    nightly: Nightly,
) -> None:
    first = await nightly.run()
    nightly.world.clock.advance(DAY)
    second = await nightly.run()

    latest = page(nightly, LATEST_PAGE)
    tiles = latest.with_attr("li", "data-health")
    lines = latest.with_attr("polyline", "data-series")

    assert second.date != first.date
    assert page_name(first.date) in nightly.blobs.list("")
    assert all(t["data-change"] == "0" for t in tiles)  # an unchanged tenant
    assert lines
    assert all(len(p["data-values"].split(",")) == 2 for p in lines)


async def test_old_pages_are_pruned_with_the_reports(nightly: Nightly) -> None:
    nightly.blobs.put("2000-01-01/report.html", b"old", content_type="text/html")
    nightly.blobs.put("2000-01-01/notes.txt", b"not ours", content_type="text/plain")

    await nightly.run(retention_days=30)

    assert nightly.blobs.get("2000-01-01/report.html") is None
    assert nightly.blobs.get("2000-01-01/notes.txt") == b"not ours"


async def test_a_run_that_prunes_no_history_keeps_the_old_reports(nightly: Nightly) -> None:
    """`license-guard reconcile` (prune_history off): its REPORT_RETENTION_DAYS is the shell's,
    not the app's; the timer's run deletes old reports."""
    nightly.blobs.put("nightly/2000-01-01/run/summary.json", b"{}", content_type="text/json")
    nightly.blobs.put("2000-01-01/report.html", b"old", content_type="text/html")
    nightly.world.clock.advance(60 * DAY)

    await nightly.run(retention_days=30, prune_history=False)

    assert nightly.blobs.get("nightly/2000-01-01/run/summary.json") == b"{}"
    assert nightly.blobs.get("2000-01-01/report.html") == b"old"


def group_rows(page: Page) -> set[tuple[str, str]]:
    """(code, subject) of the findings table's rows about groups."""
    return {
        (r["data-code"], r["data-subject"])
        for r in page.with_attr("tr", "data-subject")
        if r["data-subject"].startswith("group:")
    }


async def test_the_nightly_page_shows_the_same_group_findings_as_the_snapshot_page(
    nightly: Nightly,
) -> None:
    """The demo nests Sales_Team in the E3 Base group: NestedGroupMember is about the group,
    not a user. The snapshot page shows it; the nightly page must too (it used to show only
    the users' and the products' findings), and the night's evaluation.json lists it."""
    result = await nightly.run()
    tenant = parse_snapshot(demo_snapshot()).tenant
    snapshot = Page(
        render_health_page(
            report_from_snapshot(tenant, source="demo", generated_at="2026-11-24T09:00:00+00:00")
        )
    )

    night = page(nightly, LATEST_PAGE)

    assert ("NestedGroupMember", f"group:{E3_BASE}") in group_rows(snapshot)
    assert group_rows(night) == group_rows(snapshot)
    [evaluation] = [n for n in result.report_blobs if n.endswith("/evaluation.json")]
    document = orjson.loads(nightly.blobs.get(evaluation) or b"{}")
    found = {(g["id"], f["code"]) for g in document["groups"] for f in g["findings"]}
    assert found == {(E3_BASE, "NestedGroupMember")}


async def test_the_seat_trend_plots_each_nights_consumed_units(nightly: Nightly) -> None:
    """The nightly summary stores consumed units per product; the next page's seat trend
    draws them night by night beside demand and prepaid."""
    first = await nightly.run()
    nightly.world.clock.advance(DAY)
    second = await nightly.run()
    assert first.summary is not None
    assert second.summary is not None

    latest = page(nightly, LATEST_PAGE)
    lines = {
        p["data-series"]: p["data-values"] for p in latest.with_attr("polyline", "data-series")
    }
    consumed = {k: v for k, v in lines.items() if k.endswith(" consumed")}

    before = {s.product_name: s.consumed for s in first.summary.seat_forecast}
    tonight = {s.product_name: s.consumed for s in second.summary.seat_forecast}
    assert consumed
    assert any(v != "0,0" for v in consumed.values())
    for label, values in consumed.items():
        product = label.removesuffix(" consumed")
        assert f"{product} demand" in lines
        assert values == f"{before[product]},{tonight[product]}"
