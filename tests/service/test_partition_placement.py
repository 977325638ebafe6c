"""Two workers placing newly licensed groups at the same moment: each group gets a place in a
delta partition, none is lost, in the in-memory table and in Azurite alike (`store`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.ports.directory import DELTA_FILTER_LIMIT
from shared.ports.tables import Entity, EntityStore, EntityValue
from shared.service.stores import PARTITION_PK, LicensedGroups

PLACED = [f"placed-{n}" for n in range(3)]
FULL = [f"full-{n}" for n in range(DELTA_FILTER_LIMIT)]


class ReadTogether:
    """One worker's view of the table: its first read of the partitions waits until the other
    worker has read them too, so both decide from the same partitions before either writes."""

    def __init__(self, table: EntityStore, both_read: threading.Barrier) -> None:
        self._table = table
        self._both_read = both_read
        self._waited = False

    @property
    def name(self) -> str:
        return self._table.name

    def get(self, pk: str, rk: str) -> Entity | None:
        return self._table.get(pk, rk)

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        return self._table.insert(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        return self._table.upsert(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        return self._table.update(pk, rk, fields, etag=etag)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._table.delete(pk, rk, etag=etag)

    def query(self, pk: str) -> list[Entity]:
        rows = self._table.query(pk)
        if pk == PARTITION_PK and not self._waited:
            self._waited = True
            self._both_read.wait(timeout=30)
        return rows

    def query_all(self) -> Iterator[Entity]:
        return self._table.query_all()


@pytest.mark.parametrize(
    "already",
    [[], PLACED, FULL],
    ids=["first-partition", "partition-with-room", "after-a-full-partition"],
)
def test_two_workers_placing_new_groups_at_once_lose_none(
    store: EntityStore, already: list[str]
) -> None:
    """Both read the same partitions, both add their group to the same one: without
    concurrency control the second write replaced the first, and one group had no partition
    (its changes were never read by delta)."""
    LicensedGroups(store).assign(already)
    both_read = threading.Barrier(2)
    workers = [LicensedGroups(ReadTogether(store, both_read)) for _ in range(2)]

    with ThreadPoolExecutor(2) as pool:
        done = [
            pool.submit(w.assign, [group]) for w, group in zip(workers, ["a", "b"], strict=True)
        ]
        for future in done:
            future.result(timeout=60)

    placed = [g for p in LicensedGroups(store).partitions() for g in p.group_ids]
    assert sorted(placed) == sorted([*already, "a", "b"])


def test_placing_groups_again_returns_only_the_partitions_it_changed(store: EntityStore) -> None:
    licensed = LicensedGroups(store)
    [first] = licensed.assign(PLACED)

    changed = licensed.assign([*PLACED, "d"])

    assert [(p.index, p.group_ids) for p in changed] == [(0, (*PLACED, "d"))]
    assert first.group_ids == tuple(PLACED)
    assert licensed.assign(PLACED) == []
