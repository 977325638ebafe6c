"""`EntityStore.write_batch`, run against the in-memory fake and against Azurite alike (the
`store` fixture, tests/conftest.py): many upserts and deletes of one partition in Azure Table
transactions (at most 100 operations and 4 MiB each)."""

from __future__ import annotations

import pytest

from shared.ports.tables import (
    MAX_BATCH_BYTES,
    MAX_BATCH_OPERATIONS,
    EntityStore,
    InvalidKey,
    batch_bytes,
    batch_transactions,
)


def _rows(store: EntityStore, pk: str) -> dict[str, dict[str, object]]:
    return {e.row_key: e.fields for e in store.query(pk)}


def test_a_batch_upserts_and_deletes_rows_of_one_partition_past_one_transaction(
    store: EntityStore,
) -> None:
    for rk in ("old-1", "old-2", "kept"):
        store.upsert("g1", rk, {"n": 0})
    store.upsert("g2", "old-1", {"n": 0})
    joined = {f"u{i:03}": {"n": i} for i in range(250)}

    store.write_batch("g1", {**joined, "kept": {"n": 7}}, ["old-1", "old-2"])

    assert _rows(store, "g1") == {**joined, "kept": {"n": 7}}
    assert _rows(store, "g2") == {"old-1": {"n": 0}}  # another partition is untouched


def test_a_batch_replaces_whole_entities_as_upsert_does(store: EntityStore) -> None:
    store.upsert("p", "r", {"a": "x", "b": "y"})

    store.write_batch("p", {"r": {"a": "z", "b": None}})

    assert _rows(store, "p") == {"r": {"a": "z"}}


def test_deleting_absent_rows_in_a_batch_is_fine_as_it_is_alone(store: EntityStore) -> None:
    """A replay after a crash between two transactions deletes rows already gone: Azure fails a
    whole transaction over one such delete, where a lone delete is fine."""
    store.write_batch("g", {f"u{i:03}": {} for i in range(150)})
    store.write_batch("g", {}, [f"u{i:03}" for i in range(100)])  # the first transaction

    store.write_batch("g", {"new": {}}, ["absent", *(f"u{i:03}" for i in range(150))])

    assert _rows(store, "g") == {"new": {}}


def test_an_empty_batch_writes_nothing(store: EntityStore) -> None:
    store.write_batch("g", {}, [])

    assert _rows(store, "g") == {}


def test_a_row_both_upserted_and_deleted_is_refused_before_anything_is_written(
    store: EntityStore,
) -> None:
    with pytest.raises(ValueError, match="both upserted and deleted"):
        store.write_batch("g", {f"u{i:03}": {} for i in range(150)}, ["u149"])

    assert _rows(store, "g") == {}


@pytest.mark.parametrize(
    ("upserts", "deletes", "error"),
    [
        ({**{f"u{i:03}": {} for i in range(150)}, "a/b": {}}, [], InvalidKey),
        ({f"u{i:03}": {} for i in range(150)}, ["a#b"], InvalidKey),
        ({**{f"u{i:03}": {} for i in range(150)}, "x": {"bad name": 1}}, [], ValueError),
    ],
    ids=["upsert-key", "delete-key", "field"],
)
def test_a_key_or_field_azure_would_refuse_anywhere_stops_the_whole_batch_first(
    store: EntityStore,
    upserts: dict[str, dict[str, object]],
    deletes: list[str],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        store.write_batch("g", upserts, deletes)  # type: ignore[arg-type]

    assert _rows(store, "g") == {}


def test_large_entities_are_split_by_the_transaction_payload_limit(store: EntityStore) -> None:
    big = {f"f{i}": "x" * 30_000 for i in range(15)}  # 900 KB as UTF-16: under 1 MiB
    upserts = {f"r{i:02}": big for i in range(20)}

    transactions = batch_transactions("p", upserts)
    store.write_batch("p", upserts)

    assert len(transactions) > 1
    assert all(sum(batch_bytes("p", op) for op in t) <= MAX_BATCH_BYTES for t in transactions)
    assert sorted(_rows(store, "p")) == sorted(upserts)


def test_transactions_hold_at_most_100_operations_each_entity_once() -> None:
    transactions = batch_transactions(
        "g", {f"u{i:03}": {} for i in range(250)}, [f"d{i}" for i in range(60)] * 2
    )

    assert [len(t) for t in transactions] == [MAX_BATCH_OPERATIONS, 100, 100, 10]
    keys = [op.row_key for t in transactions for op in t]
    assert len(keys) == len(set(keys)) == 310
