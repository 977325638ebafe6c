"""`InMemoryTable`: the `EntityStore` port in memory, with the same keys, ETags and errors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from shared.ports import tables as port
from shared.ports.tables import (
    Entity,
    EntityValue,
    Upserts,
    batch_transactions,
    check_fields,
    check_key,
    check_where,
)

# ---------------------------------------------------------------------------------------------
# in memory


@dataclass
class InMemoryTable:
    """`EntityStore` in a dict, with the same validation and ETag semantics as Azure: a
    conditional write checks and writes in one step, as Azure does, whatever threads call it."""

    name: str
    _rows: dict[tuple[str, str], Entity] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _put(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        entity = Entity(check_key(pk), check_key(rk), check_fields(fields), _new_etag())
        self._rows[(pk, rk)] = entity
        return entity.etag

    def get(self, pk: str, rk: str) -> Entity | None:
        with self._lock:
            entity = self._rows.get((check_key(pk), check_key(rk)))
        return _copy(entity) if entity else None

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        check_fields(fields)
        with self._lock:
            if (check_key(pk), check_key(rk)) in self._rows:
                raise port.AlreadyExists(f"{self.name}: ({pk!r}, {rk!r}) already exists")
            return self._put(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        with self._lock:
            return self._put(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        check_fields(fields)
        with self._lock:
            current = self._rows.get((check_key(pk), check_key(rk)))
            if current is None or current.etag != etag:
                raise port.ConcurrencyConflict(
                    f"{self.name}: ({pk!r}, {rk!r}) changed or vanished since it was read"
                )
            return self._put(pk, rk, fields)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        with self._lock:
            current = self._rows.get((check_key(pk), check_key(rk)))
            if current is None:
                return
            if etag is not None and current.etag != etag:
                raise port.ConcurrencyConflict(f"{self.name}: ({pk!r}, {rk!r}) changed")
            del self._rows[(pk, rk)]

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        """As Azure: each transaction in one step, the next one after it."""
        for operations in batch_transactions(pk, upserts, deletes):
            with self._lock:
                for op in operations:
                    if op.fields is None:
                        self._rows.pop((pk, op.row_key), None)
                    else:
                        self._put(pk, op.row_key, op.fields)

    def query(self, pk: str) -> list[Entity]:
        check_key(pk)
        with self._lock:
            rows = sorted(self._rows.items())
        return [_copy(e) for (p, _), e in rows if p == pk]

    def query_all(self) -> Iterator[Entity]:
        with self._lock:
            rows = sorted(self._rows.items())
        return (_copy(e) for _, e in rows)

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        wanted = set(check_where(field, values))
        with self._lock:
            rows = sorted(self._rows.items())
        return (_copy(e) for _, e in rows if _matches(e.fields.get(field), wanted))


def _matches(value: object, wanted: set[str]) -> bool:
    """As the table service compares: a string field equal to one of the strings."""
    return isinstance(value, str) and value in wanted


def _new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _copy(entity: Entity) -> Entity:
    """A copy whose fields dict the caller may change without touching the store."""
    return Entity(entity.partition_key, entity.row_key, dict(entity.fields), entity.etag)


def in_memory_tables() -> port.Tables:
    return port.Tables(*(InMemoryTable(name) for name in port.TABLE_NAMES))
