"""Azure Tables for License Guard's state: the `EntityStore` port, Azure and in-memory.

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
save their next link; the loser re-reads and retries or gives up. `insert` raises
`AlreadyExists`, so "create once" races have one winner too.

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

import contextlib
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeAlias

import orjson
from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from shared.settings import StorageConnection

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


def _check_fields(fields: Mapping[str, EntityValue | None]) -> dict[str, EntityValue]:
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
# Azure Tables


def table_client(
    storage: str | StorageConnection,
    table_name: str,
    *,
    credential: TokenCredential | None = None,
) -> TableClient:
    """A TableClient from a connection string, or the table service URI and `credential`
    (the one the composition root made for every storage client)."""
    if isinstance(storage, str):
        return TableClient.from_connection_string(storage, table_name=table_name)
    if storage.connection_string:
        return TableClient.from_connection_string(storage.connection_string, table_name=table_name)
    if not storage.table_service_uri:
        raise ValueError("storage connection has no table service URI")
    if credential is None:
        raise ValueError(
            "identity-based storage needs a credential: pass the one from "
            "shared.bootstrap.storage_credential(settings)"
        )
    return TableClient(storage.table_service_uri, table_name=table_name, credential=credential)


def _to_azure(pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": check_key(pk), "RowKey": check_key(rk)}
    for name, value in _check_fields(fields).items():
        is_int = isinstance(value, int) and not isinstance(value, bool)
        entity[name] = EntityProperty(value, EdmType.INT64) if is_int else value
    return entity


def _from_azure_value(value: Any) -> EntityValue:
    if isinstance(value, EntityProperty):
        value = value.value
    if isinstance(value, datetime):  # TablesEntityDatetime -> plain datetime in UTC
        utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        return datetime.combine(utc.date(), utc.time(), tzinfo=UTC)
    return value  # type: ignore[no-any-return]


def _from_azure(raw: Mapping[str, Any]) -> Entity:
    metadata: Mapping[str, Any] = getattr(raw, "metadata", {})
    fields = {
        name: _from_azure_value(value)
        for name, value in raw.items()
        if name not in ("PartitionKey", "RowKey", "Timestamp") and value is not None
    }
    return Entity(raw["PartitionKey"], raw["RowKey"], fields, str(metadata.get("etag", "")))


class AzureTable:
    """`EntityStore` over one Azure Storage table; the table is created on first use."""

    def __init__(self, client: TableClient) -> None:
        self._client = client
        self._ready = False

    @classmethod
    def from_connection(
        cls,
        storage: str | StorageConnection,
        table_name: str,
        *,
        credential: TokenCredential | None = None,
    ) -> AzureTable:
        return cls(table_client(storage, table_name, credential=credential))

    @property
    def name(self) -> str:
        return str(self._client.table_name)

    @property
    def client(self) -> TableClient:
        return self._client

    def _ensure(self) -> TableClient:
        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._client.create_table()
            self._ready = True
        return self._client

    def get(self, pk: str, rk: str) -> Entity | None:
        client = self._ensure()
        try:
            return _from_azure(client.get_entity(check_key(pk), check_key(rk)))
        except ResourceNotFoundError:
            return None

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        entity = _to_azure(pk, rk, fields)
        try:
            return str(self._ensure().create_entity(entity)["etag"])
        except ResourceExistsError:
            raise AlreadyExists(f"{self.name}: ({pk!r}, {rk!r}) already exists") from None

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        entity = _to_azure(pk, rk, fields)
        return str(self._ensure().upsert_entity(entity, mode=UpdateMode.REPLACE)["etag"])

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        entity = _to_azure(pk, rk, fields)
        try:
            result = self._ensure().update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrencyConflict(
                f"{self.name}: ({pk!r}, {rk!r}) changed or vanished since it was read"
            ) from None
        return str(result["etag"])

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        client = self._ensure()
        condition = MatchConditions.IfNotModified if etag else None
        try:
            client.delete_entity(check_key(pk), check_key(rk), etag=etag, match_condition=condition)
        except ResourceModifiedError:
            raise ConcurrencyConflict(f"{self.name}: ({pk!r}, {rk!r}) changed") from None

    def query(self, pk: str) -> list[Entity]:
        rows = self._ensure().query_entities(
            "PartitionKey eq @pk", parameters={"pk": check_key(pk)}
        )
        return [_from_azure(row) for row in rows]

    def query_all(self) -> Iterator[Entity]:
        return (_from_azure(row) for row in self._ensure().list_entities())


# ---------------------------------------------------------------------------------------------
# in memory


@dataclass
class InMemoryTable:
    """`EntityStore` in a dict, with the same validation and ETag semantics as Azure."""

    name: str
    _rows: dict[tuple[str, str], Entity] = field(default_factory=dict, repr=False)

    def _put(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        entity = Entity(check_key(pk), check_key(rk), _check_fields(fields), _new_etag())
        self._rows[(pk, rk)] = entity
        return entity.etag

    def get(self, pk: str, rk: str) -> Entity | None:
        entity = self._rows.get((check_key(pk), check_key(rk)))
        return _copy(entity) if entity else None

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        _check_fields(fields)
        if (check_key(pk), check_key(rk)) in self._rows:
            raise AlreadyExists(f"{self.name}: ({pk!r}, {rk!r}) already exists")
        return self._put(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        return self._put(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        _check_fields(fields)
        current = self._rows.get((check_key(pk), check_key(rk)))
        if current is None or current.etag != etag:
            raise ConcurrencyConflict(
                f"{self.name}: ({pk!r}, {rk!r}) changed or vanished since it was read"
            )
        return self._put(pk, rk, fields)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        current = self._rows.get((check_key(pk), check_key(rk)))
        if current is None:
            return
        if etag is not None and current.etag != etag:
            raise ConcurrencyConflict(f"{self.name}: ({pk!r}, {rk!r}) changed")
        del self._rows[(pk, rk)]

    def query(self, pk: str) -> list[Entity]:
        check_key(pk)
        return [_copy(e) for (p, _), e in sorted(self._rows.items()) if p == pk]

    def query_all(self) -> Iterator[Entity]:
        return (_copy(e) for _, e in sorted(self._rows.items()))


def _new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _copy(entity: Entity) -> Entity:
    """A copy whose fields dict the caller may change without touching the store."""
    return Entity(entity.partition_key, entity.row_key, dict(entity.fields), entity.etag)


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


def tables_for(
    storage: str | StorageConnection, *, credential: TokenCredential | None = None
) -> Tables:
    """All of License Guard's Azure tables; no network call until a table is first used.

    In identity mode every table's client shares `credential`."""
    return Tables(
        *(AzureTable.from_connection(storage, name, credential=credential) for name in TABLE_NAMES)
    )


def in_memory_tables() -> Tables:
    return Tables(*(InMemoryTable(name) for name in TABLE_NAMES))
