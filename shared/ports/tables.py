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

Optimistic concurrency
======================

Every write returns the entity's new ETag. `update(..., etag=)` succeeds only if the entity
still has that ETag and raises `ConcurrencyConflict` otherwise (also if it was deleted
meanwhile). The delta-link store relies on it: two workers that read the same link cannot both
save their next link; the loser re-reads and retries or gives up (placing new groups in the
delta partitions likewise). `insert` raises `AlreadyExists`, so "create once" races have one
winner too. Both checks and the write are one step, whatever threads share a store.

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

import re
from collections.abc import Iterator, Mapping
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
_RESERVED: Final = frozenset({"partitionkey", "rowkey", "timestamp", "etag"})
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_INT64: Final = range(-(2**63), 2**63)

EntityValue: TypeAlias = str | int | bool | float | datetime


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

    def query(self, pk: str) -> list[Entity]:
        """Every entity of one partition, by row key."""
        ...

    def query_all(self) -> Iterator[Entity]:
        """Every entity, by partition key then row key."""
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
# all of License Guard's tables


@dataclass(frozen=True)
class Tables:
    deltalinks: EntityStore
    groupmembers: EntityStore
    subscriptions: EntityStore
    findings: EntityStore
    reprocessledger: EntityStore
    servicestate: EntityStore
