"""The dry run reads each ledger once, whole: its snapshot answers as the table would and
refuses every write."""

from __future__ import annotations

import pytest

from shared.fakes.tables import InMemoryTable
from shared.service.reconcile.dry_run import TableSnapshot


def test_a_snapshot_answers_queries_as_the_table_did_and_refuses_writes() -> None:
    table = InMemoryTable("findings")
    table.upsert("u2", "b", {"key": "u2|b"})
    table.upsert("u1", "b", {"key": "u1|b"})
    table.upsert("u1", "a", {"key": "u1|a"})
    snapshot = TableSnapshot(table)

    assert snapshot.name == "findings"
    assert snapshot.query("u1") == table.query("u1")
    assert snapshot.query("nobody") == []
    assert list(snapshot.query_all()) == list(table.query_all())
    assert snapshot.get("u2", "b") == table.get("u2", "b")
    assert snapshot.get("u2", "z") is None
    with pytest.raises(RuntimeError, match="writes nothing"):
        snapshot.upsert("u3", "a", {"key": "u3|a"})
    with pytest.raises(RuntimeError, match="writes nothing"):
        snapshot.insert("u3", "a", {})
    with pytest.raises(RuntimeError, match="writes nothing"):
        snapshot.update("u1", "a", {}, etag="*")
    with pytest.raises(RuntimeError, match="writes nothing"):
        snapshot.delete("u1", "a")
    assert table.get("u3", "a") is None
