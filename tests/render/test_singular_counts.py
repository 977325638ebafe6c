"""Counts in tables, pages and mails read as English where there is one: "1 user", "1 seat is",
"1 error", not "1 users", "1 seats are", "1 errors"."""

from __future__ import annotations

import io
from dataclasses import replace

from shared.catalog.products import catalog
from shared.cli.live import print_result
from shared.core.evaluate import evaluate
from shared.core.whatif import AddMember, what_if
from shared.render.channel_sections import more_lines
from shared.render.evaluation_table import write_table
from shared.render.health_page import render_health_page
from shared.render.health_sources import report_from_snapshot
from shared.render.tenant_names import TenantNames
from shared.render.user_deltas import seat_lines
from shared.service.reconcile.run_state import ReconcileResult
from tests.builders import E3, TenantBuilder
from tests.core.test_drift import CAPS
from tests.render.test_nightly_mail import NIGHT, view


def one_of_each() -> TenantBuilder:
    """One user in one licensed group of one product with one seat, consumed by a user since
    deleted: Ann waits for a seat (one error: CountViolation)."""
    return (
        TenantBuilder()
        .organization("Contoso", country="DE")
        .sku(E3, 2, seats=1, consumed=1)
        .group("G", licenses={E3: []})
        .member("G", "ann")
        .state("ann", E3, via="G", state="Error", error="CountViolation")
    )


def test_the_evaluation_table_counts_one_in_the_singular() -> None:
    tenant = one_of_each().build()
    out = io.StringIO()

    write_table(evaluate(tenant), tenant, catalog(), out)

    heading = out.getvalue().splitlines()[:2]
    assert heading == [
        "Tenant Contoso (DE): 1 user, 1 licensed group, 1 product",
        "Findings: 1 error, 0 warnings, 0 info",
    ]
    assert ", 1 seat enabled, 1 consumed" in out.getvalue()


def test_the_evaluation_table_counts_one_warning_in_the_singular() -> None:
    """Cy holds the one seat directly: Ann and Cy should hold E3, one seat (SeatShortfall)."""
    tenant = one_of_each().direct("cy", E3).build()
    out = io.StringIO()

    write_table(evaluate(tenant), tenant, catalog(), out)

    assert out.getvalue().splitlines()[1] == "Findings: 1 error, 1 warning, 0 info"


def test_the_whatif_seats_table_says_1_seat_enabled() -> None:
    b = one_of_each().user("bob")
    tenant = b.build()
    result = what_if(tenant, [AddMember(b.id("G"), b.id("bob"))], CAPS)

    (line,) = seat_lines(result.seats, TenantNames(tenant, result.tenant_after))[1:]

    assert "(+1), 1 seat enabled, SHORTFALL 1" in line


def test_the_health_page_says_1_user_scanned() -> None:
    report = report_from_snapshot(
        one_of_each().build(), source="test", generated_at="2026-12-02T06:00:00+00:00"
    )

    assert "1 user scanned" in render_health_page(report)


def test_the_nightly_mail_says_1_user_scanned() -> None:
    lead = view(replace(NIGHT, users_scanned=1)).lead

    assert lead[0].startswith("Reconciliation night-2026-12-02: 1 user scanned from ")


def test_the_reconcile_command_says_1_user() -> None:
    result = ReconcileResult(users=1, run_id="run", date="2026-12-03", status="done")
    out = io.StringIO()

    print_result(result, "table", out)

    assert out.getvalue().startswith("run run (2026-12-03): 1 user, 0 new finding(s), ")


def test_the_health_page_charts_say_1_product() -> None:
    report = report_from_snapshot(
        one_of_each().build(), source="test", generated_at="2026-12-02T06:00:00+00:00"
    )

    page = render_health_page(report)

    assert "1 product;" in page
    assert "product(s)" not in page


def test_a_channel_note_of_one_line_left_out_is_singular() -> None:
    assert more_lines(1, "Teams' card size", None).startswith("… 1 more line left out")
    assert more_lines(2, "Teams' card size", None).startswith("… 2 more lines left out")
