"""The `EntityStore` port: License Guard's state as Azure Tables entities, keys and errors.

Table names are a contract: `DELTALINKS`, `GROUPMEMBERS`, `SUBSCRIPTIONS`, `FINDINGS`,
`REPROCESSLEDGER`, plus `SERVICESTATE` for caches and watermarks.

Entities
========

An entity is a partition key, a row key, flat fields and an ETag. Field values are ``str``,
``int`` (stored as Edm.Int64, so counters never overflow Int32), ``bool``, ``float`` and
time-zone-aware ``datetime`` (read back in UTC). ``None`` means "no such field": it is not
stored. Lists and dicts are not table types: store them as JSON text with `json_field` and read
them with `parse_json_field`. Field names are identifiers (letters, digits, ``_``; not
``PartitionKey``, ``RowKey``, ``Timestamp``); a string holds at most 32,768 characters.

Writes replace the whole entity (`upsert`, `update`): what you write is what you read back,
with no merge surprises.

Batches
=======

`write_batch` upserts and deletes many entities of one partition in Azure Table transactions
(entity group transactions): at most `MAX_BATCH_OPERATIONS` (100) operations and
`MAX_BATCH_BYTES` (4 MiB) of request each, one operation per entity. Each transaction is
all-or-nothing; the batch as a whole is not: a failure (or a crash) between two transactions
leaves the earlier ones written. Callers replay the whole batch, which is safe because an
upsert writes the same entity again and deleting what is absent is fine (as `delete`). 300k
membership rows are 3,000 requests instead of 300,000 (docs/performance.md).

Optimistic concurrency
======================

Every write returns the entity's new ETag. `update(..., etag=)` succeeds only if the entity
still has that ETag and raises `ConcurrencyConflict` otherwise (also if it was deleted
meanwhile). The delta-link store relies on it: two workers that read the same link cannot both
save their next link; the loser re-reads and retries or gives up (placing new groups in the
delta partitions likewise). `insert` raises `AlreadyExists`, so "create once" races have one
winner too. Both checks and the write are one step, whatever threads share a store.

Filters
=======

`query_where` asks the table service for the entities whose field equals one of some strings
(an OData ``$filter`` of ``eq`` comparisons joined by ``or``): a scan of the whole table still,
on the service's side, but only the matching entities cross the network. Azure allows at most
15 discrete comparisons in a filter (`MAX_FILTER_VALUES`); more are refused before any
request. A filter cannot ask for a field that is absent (Azure refuses ``eq null``, which
Azurite accepts), so "still open" (no ``resolvedAt``) is decided by the caller.

Keys
====

Table keys may not contain ``/``, ``\\``, ``#``, ``?`` or control characters, and hold at most
1 KiB. Both stores reject such keys with `InvalidKey`. Build keys from arbitrary text with
`safe_key`, which escapes those characters as ``~XX`` (two hex digits), and also ``%`` and
``'``: both are legal, but ``%`` breaks some Table APIs (Azure Storage team blog, 2012-05-28,
"PartitionKey or RowKey containing the percent character causes some Windows Azure Tables APIs
to fail") and ``'`` needs quoting that SDKs and Azurite have got wrong. ``~`` itself is escaped
so that `from_safe_key` reverses it exactly. A finding key like ``user|sku|Code|-`` and GUIDs
pass through unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeAlias

import orjson

DELTALINKS: Final = "deltalinks"
GROUPMEMBERS: Final = "groupmembers"
SUBSCRIPTIONS: Final = "subscriptions"
FINDINGS: Final = "findings"
REPROCESSLEDGER: Final = "reprocessledger"
SERVICESTATE: Final = "servicestate"
"""Caches and watermarks (subscribed SKUs, last sync time, the reprocess brake)."""
TABLE_NAMES: Final = (
    DELTALINKS,
    GROUPMEMBERS,
    SUBSCRIPTIONS,
    FINDINGS,
    REPROCESSLEDGER,
    SERVICESTATE,
)

MAX_KEY_CHARS: Final = 1024
MAX_STRING_CHARS: Final = 32 * 1024  # 64 KiB of UTF-16
MAX_FIELDS: Final = 252
MAX_FILTER_VALUES: Final = 15
"""Azure's limit of discrete comparisons in one query's $filter."""
MAX_BATCH_OPERATIONS: Final = 100
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
_BATCH_OVERHEAD_BYTES: Final = 1024
"""A generous allowance per operation for its MIME part headers and URL, besides the keys."""
_RESERVED: Final = frozenset({"partitionkey", "rowkey", "timestamp", "etag"})
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_INT64: Final = range(-(2**63), 2**63)

EntityValue: TypeAlias = str | int | bool | float | datetime
Upserts: TypeAlias = Mapping[str, Mapping[str, EntityValue | None]]
"""A `write_batch`'s entities to create or replace: row key -> fields."""


class AlreadyExists(Exception):
    """`insert` found an entity with the same keys."""


class ConcurrencyConflict(Exception):
    """The entity changed (or was deleted) since the ETag given was read."""


class InvalidKey(ValueError):
    """A partition or row key Azure Tables would refuse."""


@dataclass(frozen=True, slots=True)
class Entity:
    """One stored entity: its keys, its fields and the ETag to update it with."""

    partition_key: str
    row_key: str
    fields: dict[str, EntityValue]
    etag: str


class EntityStore(Protocol):
    """One table of entities with optimistic concurrency."""

    @property
    def name(self) -> str: ...

    def get(self, pk: str, rk: str) -> Entity | None: ...

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        """Create the entity and return its ETag; AlreadyExists if it is there."""
        ...

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        """Create or replace the entity; return the new ETag."""
        ...

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        """Replace the entity if it still has `etag`; ConcurrencyConflict otherwise."""
        ...

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        """Remove the entity (no error if absent); with `etag`, only if unchanged."""
        ...

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        """Upsert `upserts` (row key -> fields) and delete `deletes` (no error if absent) in
        partition `pk`, in transactions of at most 100 operations (see "Batches")."""
        ...

    def query(self, pk: str) -> list[Entity]:
        """Every entity of one partition, by row key."""
        ...

    def query_all(self) -> Iterator[Entity]:
        """Every entity, by partition key then row key."""
        ...

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        """Every entity whose string field `field` is one of `values` (at most
        `MAX_FILTER_VALUES`), by partition key then row key: filtered by the table service,
        so the others are not sent (see "Filters")."""
        ...


# ---------------------------------------------------------------------------------------------
# keys and values


def _forbidden(char: str) -> bool:
    code = ord(char)
    return char in "/\\#?" or code < 0x20 or 0x7F <= code <= 0x9F


def _escape(char: str) -> str:
    return f"~{ord(char):02X}" if char in "%'~" or _forbidden(char) else char


def safe_key(text: str) -> str:
    """`text` as a table key: forbidden characters, ``%``, ``'`` and ``~`` become ``~XX``."""
    key = "".join(_escape(c) for c in text)
    check_key(key)
    return key


def from_safe_key(key: str) -> str:
    """Undo `safe_key`."""
    return re.sub(r"~([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), key)


def check_key(key: str) -> str:
    """`key` if Azure Tables accepts it as a partition or row key; InvalidKey otherwise."""
    if not isinstance(key, str):
        raise InvalidKey(f"keys are strings, not {type(key).__name__}")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidKey(f"key longer than {MAX_KEY_CHARS} characters: {key[:40]!r}...")
    bad = sorted({c for c in key if _forbidden(c)})
    if bad:
        raise InvalidKey(f"key {key!r} contains {bad!r}; build it with safe_key()")
    return key


def check_where(field: str, values: Collection[str]) -> tuple[str, ...]:
    """A `query_where`'s values, once each, in order, if Azure accepts the filter; ValueError
    for a field name that is not an identifier, or more than `MAX_FILTER_VALUES` values."""
    if not isinstance(field, str) or not _NAME.fullmatch(field):
        raise ValueError(f"field name {field!r} is not an identifier")
    wanted = tuple(dict.fromkeys(str(v) for v in values))
    if len(wanted) > MAX_FILTER_VALUES:
        raise ValueError(
            f"at most {MAX_FILTER_VALUES} values in a filter (Azure's limit), got {len(wanted)}"
        )
    return wanted


def json_field(value: Any) -> str:
    """A list or dict as compact JSON text for an entity field (keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def parse_json_field(text: str) -> Any:
    """Read back what `json_field` wrote."""
    return orjson.loads(text)


def check_fields(fields: Mapping[str, EntityValue | None]) -> dict[str, EntityValue]:
    clean: dict[str, EntityValue] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"field name {name!r} is not an identifier")
        if name.lower() in _RESERVED:
            raise ValueError(f"field name {name!r} is reserved by Azure Tables")
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(f"field {name}: datetimes must be time-zone aware")
            value = value.astimezone(UTC)
        elif isinstance(value, bool | float):
            pass
        elif isinstance(value, int):
            if value not in _INT64:
                raise ValueError(f"field {name}: {value} does not fit in 64 bits")
        elif isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise ValueError(f"field {name}: string longer than {MAX_STRING_CHARS}")
        else:
            raise TypeError(
                f"field {name}: {type(value).__name__} is not a table type "
                "(str, int, bool, float, datetime; store lists/dicts with json_field)"
            )
        clean[name] = value
    if len(clean) > MAX_FIELDS:
        raise ValueError(f"at most {MAX_FIELDS} fields per entity, got {len(clean)}")
    return clean


# ---------------------------------------------------------------------------------------------
# batches


@dataclass(frozen=True, slots=True)
class BatchOperation:
    """One operation of a `write_batch`: an upsert of `fields` (checked), or a delete (None)."""

    row_key: str
    fields: dict[str, EntityValue] | None


def batch_transactions(
    pk: str, upserts: Upserts, deletes: Iterable[str] = ()
) -> list[list[BatchOperation]]:
    """A `write_batch` as the transactions Azure accepts, every key and field checked before
    anything is written: at most `MAX_BATCH_OPERATIONS` operations and `MAX_BATCH_BYTES`
    (estimated generously: JSON with non-ASCII escaped) each; an entity at most once."""
    check_key(pk)
    doomed = dict.fromkeys(check_key(rk) for rk in deletes)
    both = sorted(doomed.keys() & upserts.keys())
    if both:
        raise ValueError(f"row keys both upserted and deleted in one batch: {both[:5]!r}")
    operations = [BatchOperation(check_key(rk), check_fields(f)) for rk, f in upserts.items()]
    operations.extend(BatchOperation(rk, None) for rk in doomed)
    transactions: list[list[BatchOperation]] = []
    size = 0
    for operation in operations:
        cost = batch_bytes(pk, operation)
        current = transactions[-1] if transactions else None
        if current is None or len(current) == MAX_BATCH_OPERATIONS or size + cost > MAX_BATCH_BYTES:
            transactions.append([])
            size = 0
        transactions[-1].append(operation)
        size += cost
    return transactions


def batch_bytes(pk: str, operation: BatchOperation) -> int:
    """The keys twice (percent-encoded in the URL, escaped in the body: at most 12 bytes per
    character together), and the fields as JSON with non-ASCII escaped."""
    body = json.dumps(operation.fields or {}, default=str, ensure_ascii=True)
    return _BATCH_OVERHEAD_BYTES + 12 * (len(pk) + len(operation.row_key)) + len(body)


# ---------------------------------------------------------------------------------------------
# all of License Guard's tables


@dataclass(frozen=True)
class Tables:
    deltalinks: EntityStore
    groupmembers: EntityStore
    subscriptions: EntityStore
    findings: EntityStore
    reprocessledger: EntityStore
    servicestate: EntityStore
