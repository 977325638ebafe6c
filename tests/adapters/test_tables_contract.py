"""The EntityStore contract, run against the in-memory fake and against Azurite alike (the
`store` fixture, tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.tables import tables_for
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import (
    AlreadyExists,
    ConcurrencyConflict,
    Entity,
    EntityStore,
    InvalidKey,
    check_key,
    from_safe_key,
    json_field,
    parse_json_field,
    safe_key,
)

LINK = "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=abc"


def test_an_inserted_entity_reads_back_with_the_etag_insert_returned(store: EntityStore) -> None:
    etag = store.insert("groups", "g1", {"deltaLink": LINK})

    got = store.get("groups", "g1")

    assert got is not None
    assert got.fields == {"deltaLink": LINK}
    assert got.etag == etag
    assert (got.partition_key, got.row_key) == ("groups", "g1")


def test_a_missing_entity_reads_as_none(store: EntityStore) -> None:
    assert store.get("groups", "nobody") is None


def test_inserting_twice_raises_already_exists_and_keeps_the_first(store: EntityStore) -> None:
    store.insert("groups", "g1", {"n": 1})

    with pytest.raises(AlreadyExists):
        store.insert("groups", "g1", {"n": 2})
    assert store.get("groups", "g1").fields == {"n": 1}  # type: ignore[union-attr]


def test_upsert_creates_then_replaces_the_whole_entity(store: EntityStore) -> None:
    first = store.upsert("p", "r", {"a": "x", "b": "y"})

    second = store.upsert("p", "r", {"a": "z"})

    got = store.get("p", "r")
    assert got is not None
    assert got.fields == {"a": "z"}
    assert got.etag == second != first


def test_update_with_the_current_etag_replaces_and_returns_a_new_etag(store: EntityStore) -> None:
    etag = store.insert("p", "r", {"a": "x", "b": "y"})

    new = store.update("p", "r", {"a": "z"}, etag=etag)

    got = store.get("p", "r")
    assert got is not None
    assert got.fields == {"a": "z"}
    assert got.etag == new != etag


def test_two_workers_saving_the_next_delta_link_from_the_same_read_cannot_both_win(
    store: EntityStore,
) -> None:
    store.insert("groups", "g1", {"deltaLink": LINK})
    worker_a = store.get("groups", "g1")
    worker_b = store.get("groups", "g1")
    assert worker_a is not None
    assert worker_b is not None

    store.update("groups", "g1", {"deltaLink": LINK + "-a"}, etag=worker_a.etag)
    with pytest.raises(ConcurrencyConflict):
        store.update("groups", "g1", {"deltaLink": LINK + "-b"}, etag=worker_b.etag)

    assert store.get("groups", "g1").fields == {"deltaLink": LINK + "-a"}  # type: ignore[union-attr]


WRITERS = 4


def at_once(write: Callable[[int], object]) -> list[bool]:
    """`write(n)` by WRITERS threads released together: which of them succeeded (the others
    raised ConcurrencyConflict or AlreadyExists)."""
    start = threading.Barrier(WRITERS)

    def attempt(n: int) -> bool:
        start.wait(timeout=30)
        try:
            write(n)
        except (ConcurrencyConflict, AlreadyExists):
            return False
        return True

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(attempt, range(WRITERS), timeout=60))


def test_conditional_writes_at_the_same_moment_have_exactly_one_winner(
    store: EntityStore,
) -> None:
    """Azure Tables checks the ETag (or the entity's absence) and writes in one step: of
    workers writing from the same read at the same moment, one wins, as one after the other."""
    for row in ("r0", "r1", "r2"):
        inserted = at_once(partial(_insert_n, store, row))
        read = store.get("p", row)
        assert read is not None
        updated = at_once(partial(_update_n, store, read))

        assert (inserted.count(True), updated.count(True)) == (1, 1), row
        assert store.get("p", row).fields == {"n": updated.index(True)}  # type: ignore[union-attr]


def _insert_n(store: EntityStore, row: str, n: int) -> str:
    return store.insert("p", row, {"n": n})


def _update_n(store: EntityStore, read: Entity, n: int) -> str:
    return store.update("p", read.row_key, {"n": n}, etag=read.etag)


def test_updating_an_entity_deleted_meanwhile_is_a_conflict(store: EntityStore) -> None:
    etag = store.insert("p", "r", {"a": "x"})
    store.delete("p", "r")

    with pytest.raises(ConcurrencyConflict):
        store.update("p", "r", {"a": "y"}, etag=etag)
    assert store.get("p", "r") is None


def test_delete_removes_and_deleting_what_is_absent_is_fine(store: EntityStore) -> None:
    store.insert("p", "r", {"a": "x"})

    store.delete("p", "r")
    store.delete("p", "r")

    assert store.get("p", "r") is None


def test_a_conditional_delete_with_a_stale_etag_is_a_conflict(store: EntityStore) -> None:
    stale = store.insert("p", "r", {"a": "x"})
    current = store.upsert("p", "r", {"a": "y"})

    with pytest.raises(ConcurrencyConflict):
        store.delete("p", "r", etag=stale)
    store.delete("p", "r", etag=current)

    assert store.get("p", "r") is None


def test_query_returns_one_partition_ordered_by_row_key(store: EntityStore) -> None:
    for pk, rk in [("g1", "u3"), ("g2", "u1"), ("g1", "u1"), ("g1", "u2")]:
        store.insert(pk, rk, {"member": True})

    rows = store.query("g1")

    assert [e.row_key for e in rows] == ["u1", "u2", "u3"]
    assert store.query("g3") == []


def test_query_all_returns_every_entity_by_partition_then_row(store: EntityStore) -> None:
    for pk, rk in [("b", "2"), ("a", "9"), ("b", "1")]:
        store.insert(pk, rk, {})

    assert [(e.partition_key, e.row_key) for e in store.query_all()] == [
        ("a", "9"),
        ("b", "1"),
        ("b", "2"),
    ]


def test_query_where_returns_the_entities_whose_field_is_one_of_the_values(
    store: EntityStore,
) -> None:
    """Filtered by the table service ($filter), in key order: rows without the field, or
    with another value or type, are not returned; a quote in a value is only a character."""
    store.insert("b", "1", {"code": "CountViolation"})
    store.insert("a", "2", {"code": "O'Brien"})
    store.insert(
        "a",
        "1",
        {"code": "PendingGroupAssignment", "resolvedAt": datetime(2026, 12, 4, tzinfo=UTC)},
    )
    store.insert("a", "3", {"code": "DataLossRisk"})
    store.insert("c", "1", {"other": "CountViolation"})
    store.insert("c", "2", {"code": 7})

    rows = store.query_where("code", ["CountViolation", "PendingGroupAssignment", "O'Brien"])

    assert [(e.partition_key, e.row_key) for e in rows] == [("a", "1"), ("a", "2"), ("b", "1")]
    assert list(store.query_where("code", [])) == []


def test_query_where_takes_at_most_fifteen_values(store: EntityStore) -> None:
    """Azure refuses a $filter with more than 15 discrete comparisons."""
    with pytest.raises(ValueError, match="15"):
        list(store.query_where("code", [f"c{i}" for i in range(16)]))
    with pytest.raises(ValueError, match="identifier"):
        list(store.query_where("code eq 'x' or code", ["y"]))
    assert list(store.query_where("code", [f"c{i}" for i in range(15)])) == []


def test_supported_field_types_read_back_as_written(store: EntityStore) -> None:
    cet = timezone(timedelta(hours=1))
    written = {
        "text": "Grüße",
        "small": 5,
        "big": 2**40,
        "negative": -(2**62),
        "flag": True,
        "ratio": 0.25,
        "at": datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=cet),
        "gone": None,
    }

    store.insert("p", "r", written)

    got = store.get("p", "r")
    assert got is not None
    assert got.fields == {k: v for k, v in written.items() if v is not None}
    assert got.fields["at"].tzinfo == UTC  # type: ignore[union-attr]
    assert type(got.fields["flag"]) is bool
    assert type(got.fields["big"]) is int


def test_lists_go_in_as_json_text(store: EntityStore) -> None:
    with pytest.raises(TypeError, match="json_field"):
        store.insert("p", "r", {"skus": ["a", "b"]})  # type: ignore[dict-item]

    store.insert("p", "r", {"skus": json_field(["a", "b"])})

    assert parse_json_field(store.get("p", "r").fields["skus"]) == ["a", "b"]  # type: ignore[arg-type,union-attr]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"at": datetime(2026, 3, 1)}, "time-zone aware"),  # noqa: DTZ001 - the point of the test
        ({"RowKey": "x"}, "reserved"),
        ({"bad-name": "x"}, "not an identifier"),
        ({"huge": 2**63}, "64 bits"),
    ],
)
def test_fields_azure_would_refuse_are_refused_by_both_stores(
    store: EntityStore, fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        store.insert("p", "r", fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["a/b", "a\\b", "a#b", "a?b", "a\tb", "a\x7fb"])
def test_keys_with_forbidden_characters_are_refused_by_both_stores(
    store: EntityStore, key: str
) -> None:
    with pytest.raises(InvalidKey):
        store.insert(key, "r", {})
    with pytest.raises(InvalidKey):
        store.get("p", key)


def test_safe_keys_from_awkward_text_work_in_both_stores(store: EntityStore) -> None:
    text = "50% of 'Sales/EMEA' #1? ~ok"
    key = safe_key(text)

    store.insert(key, key, {"text": text})

    [got] = store.query(key)
    assert from_safe_key(got.row_key) == text
    assert got.fields == {"text": text}


# --- keys ---------------------------------------------------------------------------------------


def test_a_finding_key_and_guids_are_already_safe() -> None:
    assert safe_key("user|sku|Code|-") == "user|sku|Code|-"
    guid = "6f1e9a1c-0000-4000-8000-000000000001"
    assert safe_key(guid) == guid


def test_safe_key_escapes_what_tables_forbid_and_what_breaks_some_apis() -> None:
    assert safe_key("a/b\\c#d?e\x01f%g'h~i") == "a~2Fb~5Cc~23d~3Fe~01f~25g~27h~7Ei"


def test_a_key_over_one_kibibyte_is_refused() -> None:
    with pytest.raises(InvalidKey, match="longer than 1024"):
        check_key("k" * 1025)


@given(st.text(max_size=200))
def test_safe_key_is_always_accepted_and_always_reversible(text: str) -> None:
    key = safe_key(text)

    assert check_key(key) == key
    assert from_safe_key(key) == text


def test_tables_for_names_the_five_contract_tables_and_the_state_table() -> None:
    tables = tables_for("UseDevelopmentStorage=true")

    assert [t.name for t in vars(tables).values()] == [
        "deltalinks",
        "groupmembers",
        "subscriptions",
        "findings",
        "reprocessledger",
        "servicestate",
    ]


def test_changing_what_get_returned_does_not_change_the_fake() -> None:
    fake = InMemoryTable("t")
    fake.insert("p", "r", {"a": "x"})

    fake.get("p", "r").fields["a"] = "mutated"  # type: ignore[union-attr]

    assert fake.get("p", "r").fields == {"a": "x"}  # type: ignore[union-attr]
