"""The findings ledger over both stores (the `store` fixture: the in-memory fake, then Azurite):
a run that read a user earlier never resolves, reopens or overwrites what a run that read the
user later recorded, also when the later run writes between the earlier one's read of the
ledger and its writes (compare-and-write on the row's ETag)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.findings import Finding
from shared.ports.tables import Entity, EntityStore
from shared.service.stores import FindingsLedger

USER = "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e"
BEFORE = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
"""When the slow run read the user (before the change)."""
AFTER = BEFORE + timedelta(seconds=30)
"""When the fast run read the user (after the change)."""


def finding(code: str) -> Finding:
    return Finding(code, "error", USER, None, None, f"{code} for the test", "the fix")


LOSS, CONFLICT = finding("DataLossRisk"), finding("MutuallyExclusiveViolation")


def record(
    ledger: FindingsLedger, found: list[Finding], read_at: datetime | None, run_id: str
) -> Any:
    now = (read_at or AFTER) + timedelta(minutes=1)
    return ledger.reconcile(USER, found, now=now, run_id=run_id, read_at=read_at)


def rows(store: EntityStore) -> dict[str, tuple[str, bool]]:
    """Finding code -> (the run that last wrote the row, open)."""
    return {
        str(e.fields["code"]): (str(e.fields["runId"]), not e.fields.get("resolvedAt"))
        for e in store.query(USER)
    }


def test_an_earlier_read_does_not_resolve_what_a_later_read_found(store: EntityStore) -> None:
    ledger = FindingsLedger(store)
    record(ledger, [LOSS], AFTER, "fast")

    change = record(ledger, [], BEFORE, "slow")

    assert change.resolved == ()
    assert rows(store) == {"DataLossRisk": ("fast", True)}


def test_an_earlier_read_neither_reopens_nor_opens_what_a_later_read_resolved(
    store: EntityStore,
) -> None:
    ledger = FindingsLedger(store)
    record(ledger, [CONFLICT], BEFORE - timedelta(hours=1), "first")
    record(ledger, [], AFTER, "fast")

    change = record(ledger, [CONFLICT, LOSS], BEFORE, "slow")

    assert change.new == ()
    assert rows(store) == {"MutuallyExclusiveViolation": ("fast", False)}


def test_a_later_read_writes_over_an_earlier_one_and_equal_reads_go_on(store: EntityStore) -> None:
    """A redelivered nightly page reads as its run started: as the rows it wrote before."""
    ledger = FindingsLedger(store)
    record(ledger, [LOSS], BEFORE, "slow")
    record(ledger, [LOSS], BEFORE, "slow again")
    assert rows(store) == {"DataLossRisk": ("slow again", True)}

    change = record(ledger, [], AFTER, "fast")

    assert [key.split("|")[2] for key in change.resolved] == ["DataLossRisk"]
    assert rows(store) == {"DataLossRisk": ("fast", False)}


def test_rows_without_a_read_time_and_writers_without_one_go_on_as_before(
    store: EntityStore,
) -> None:
    ledger = FindingsLedger(store)
    record(ledger, [LOSS], None, "old version")
    record(ledger, [], BEFORE, "slow")
    assert rows(store) == {"DataLossRisk": ("slow", False)}

    record(ledger, [LOSS], None, "no read time")

    assert rows(store) == {"DataLossRisk": ("no read time", True)}


class LaterRunMeanwhile:
    """The table as the slow run sees it: right after it reads the user's findings, the fast
    run records its own (it read the user later and wrote first)."""

    def __init__(self, table: EntityStore, meanwhile: Callable[[], object]) -> None:
        self._table, self._meanwhile = table, meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query(self, pk: str) -> list[Entity]:
        read = self._table.query(pk)
        meanwhile, self._meanwhile = self._meanwhile, lambda: None
        meanwhile()
        return read


def test_a_later_read_written_between_an_earlier_runs_read_and_write_stands(
    store: EntityStore,
) -> None:
    """The slow run read the ledger (the loss open) before the fast one wrote it found again;
    the slow run, which did not find it, meets the fast run's row when it resolves it (ETag),
    reads it again and leaves it."""
    ledger = FindingsLedger(store)
    record(ledger, [LOSS], BEFORE - timedelta(hours=1), "earlier")
    fast = FindingsLedger(store)
    slow = FindingsLedger(LaterRunMeanwhile(store, lambda: record(fast, [LOSS], AFTER, "fast")))

    change = record(slow, [CONFLICT], BEFORE, "slow")

    assert change.resolved == ()
    assert rows(store)["DataLossRisk"] == ("fast", True)


def test_a_row_created_between_an_earlier_runs_read_and_write_stands(store: EntityStore) -> None:
    """Both read no row; the later read creates it first: the earlier one's create meets it
    (insert if absent) and leaves it as the later read wrote it."""
    fast = FindingsLedger(store)
    slow = FindingsLedger(LaterRunMeanwhile(store, lambda: record(fast, [CONFLICT], AFTER, "fast")))

    change = record(slow, [CONFLICT], BEFORE, "slow")

    assert change.new == ()
    assert rows(store) == {"MutuallyExclusiveViolation": ("fast", True)}
