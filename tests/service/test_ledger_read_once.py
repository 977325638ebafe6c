"""The user pipeline reads a user's reprocess ledger once: history, seats in flight and unsent
causes come from one partition query, and a write makes the next read fresh."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.findings import COUNT_VIOLATION
from shared.core.reprocess import Cause
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import Entity
from shared.service.stores import ReprocessLedger
from shared.service.user_reads import PartitionsReadOnce

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class CountingTable(InMemoryTable):
    def __init__(self) -> None:
        super().__init__("reprocessledger")
        self.queries = 0

    def query(self, pk: str) -> list[Entity]:
        self.queries += 1
        return super().query(pk)


def test_one_query_per_user_until_a_write() -> None:
    table = CountingTable()
    ReprocessLedger(table).queue(
        "u1", Cause(COUNT_VIOLATION, "sku", "g"), now=NOW, correlation_id="c"
    )
    table.queries = 0
    ledger = ReprocessLedger(PartitionsReadOnce(table))

    assert ledger.history("u1")
    assert ledger.seats_in_flight("u1", now=NOW) == {"sku"}
    assert len(ledger.unsent("u1")) == 1
    assert table.queries == 1

    ledger.mark_sent("u1", ledger.unsent("u1"))
    assert ledger.unsent("u1") == []
    assert table.queries == 2
