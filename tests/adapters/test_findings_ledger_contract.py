"""The findings ledger over both stores (the `store` fixture: the in-memory fake, then Azurite):
a run that read a user earlier never resolves, reopens or overwrites what a run that read the
user later recorded, also when the later run writes between the earlier one's read of the
ledger and its writes (compare-and-write on the row's ETag)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from shared.core.findings import Finding
from shared.ports.tables import ConcurrencyConflict, Entity, EntityStore, EntityValue
from shared.service.stores import FindingsLedger
from shared.service.stores.findings_ledger import WRITE_ATTEMPTS

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


class WrittenFirstEachTime:
    """The table as a contended writer sees it: before each of its writes of the row
    (`row_key`; None: any), another instance writes it first (the next of `others`, while any
    are left), so every write meets a row changed since it was read."""

    def __init__(
        self, table: EntityStore, others: list[Callable[[], object]], row_key: str | None = None
    ) -> None:
        self._table, self._others, self._row_key = table, others, row_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _another_first(self, rk: str) -> None:
        if self._others and self._row_key in (None, rk):
            self._others.pop(0)()

    def insert(self, pk: str, rk: str, fields: dict[str, EntityValue | None]) -> str:
        self._another_first(rk)
        return self._table.insert(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: dict[str, EntityValue | None]) -> str:
        self._another_first(rk)
        return self._table.upsert(pk, rk, fields)

    def update(self, pk: str, rk: str, fields: dict[str, EntityValue | None], *, etag: str) -> str:
        self._another_first(rk)
        return self._table.update(pk, rk, fields, etag=etag)


def digest_marks(store: EntityStore) -> None:
    """The digest, on another instance, marks the user's finding as mailed."""
    [row] = store.query(USER)
    fields = row.fields | {"alertedIn": "digest-1"}
    store.update(row.partition_key, row.row_key, fields, etag=row.etag)


@pytest.mark.parametrize("last", ["a later read", "the digest's mark"])
def test_a_write_made_before_the_last_attempt_is_not_overwritten(
    store: EntityStore, last: str
) -> None:
    """The slow run meets a row written meanwhile at every attempt to resolve the loss (runs
    of the same read), the last time by a run that read the user later, or by the digest's
    mark. Its last attempt used to write anyway: the later read's loss resolved (the guard
    passed by), or the mark lost and the loss mailed again. Now it is conditional too, and
    the work is handed back (raised: the message's redelivery redoes it)."""
    ledger = FindingsLedger(store)
    record(ledger, [LOSS], BEFORE - timedelta(hours=1), "earlier")
    another = FindingsLedger(store)
    others: list[Callable[[], object]] = [
        partial(record, another, [LOSS], BEFORE, f"same read {n}")
        for n in range(WRITE_ATTEMPTS - 1)
    ]
    if last == "a later read":
        others.append(partial(record, another, [LOSS], AFTER, "fast"))
    else:
        others.append(partial(digest_marks, store))
    slow = FindingsLedger(WrittenFirstEachTime(store, others))

    with pytest.raises(ConcurrencyConflict):
        record(slow, [], BEFORE, "slow")

    [row] = store.query(USER)
    assert others == []
    assert not row.fields.get("resolvedAt")
    assert row.fields["runId"] == (
        "fast" if last == "a later read" else f"same read {WRITE_ATTEMPTS - 2}"
    )
    redelivered = record(ledger, [], BEFORE, "slow")
    [row] = store.query(USER)
    if last == "a later read":
        assert redelivered.resolved == ()
        assert rows(store) == {"DataLossRisk": ("fast", True)}
    else:
        assert rows(store) == {"DataLossRisk": ("slow", False)}
        assert row.fields["alertedIn"] == "digest-1"
