"""The reprocess ledger keeps which run queued a cause (`runId`), so a resumed page or a
redelivered message knows the reprocesses it queued itself; rows written before it was kept
still read as they did."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.findings import COUNT_VIOLATION
from shared.core.reprocess import Cause
from shared.fakes.tables import InMemoryTable
from shared.service.stores import ReprocessLedger

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CAUSE = Cause(COUNT_VIOLATION, "sku", "g", ("freeSeats>0", "after=none"))


def test_the_run_that_queued_a_cause_finds_it_and_no_other_run_does() -> None:
    ledger = ReprocessLedger(InMemoryTable("reprocessledger"))
    ledger.queue("u1", CAUSE, now=NOW, correlation_id="2026-11-24-run")

    assert ledger.queued_by("u1", "2026-11-24-run") == [CAUSE]
    assert ledger.queued_by("u1", "2026-11-25-run") == []


def test_a_row_written_before_the_run_id_was_kept_is_still_an_attempt_of_no_run() -> None:
    table = InMemoryTable("reprocessledger")
    ReprocessLedger(table).queue("u1", CAUSE, now=NOW, correlation_id="c")
    [row] = table.query("u1")
    old = {k: v for k, v in row.fields.items() if k != "runId"}
    table.upsert("u1", row.row_key, old)
    ledger = ReprocessLedger(table)

    [attempt] = ledger.history("u1")
    assert attempt.cause == CAUSE
    assert attempt.reprocessed
    assert ledger.queued_by("u1", "c") == []
    assert ledger.seats_in_flight("u1", now=NOW) == {"sku"}
