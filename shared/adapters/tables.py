"""`AzureTable`: the `EntityStore` port over Azure Tables (azure-data-tables).

Entities, keys and concurrency are described in `shared.ports.tables`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableClient,
    TableErrorCode,
    TableTransactionError,
    UpdateMode,
)

from shared.adapters.storage_clients import CreatedOnFirstUse, storage_client
from shared.platform.settings import StorageConnection
from shared.ports.tables import (
    TABLE_NAMES,
    AlreadyExists,
    BatchOperation,
    ConcurrencyConflict,
    Entity,
    EntityValue,
    Tables,
    Upserts,
    batch_transactions,
    check_fields,
    check_key,
    check_where,
)

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
    return storage_client(TableClient, storage, table_name, credential, service="table")


def _to_azure(pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": check_key(pk), "RowKey": check_key(rk)}
    for name, value in check_fields(fields).items():
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


class AzureTable(CreatedOnFirstUse[TableClient]):
    """`EntityStore` over one Azure Storage table; the table is created on first use."""

    connect = staticmethod(table_client)

    def _create(self) -> None:
        self._client.create_table()

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

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        transactions = batch_transactions(pk, upserts, deletes)
        client = self._ensure()
        for operations in transactions:
            _submit(client, pk, operations)

    def query(self, pk: str) -> list[Entity]:
        rows = self._ensure().query_entities(
            "PartitionKey eq @pk", parameters={"pk": check_key(pk)}
        )
        return [_from_azure(row) for row in rows]

    def query_all(self) -> Iterator[Entity]:
        return (_from_azure(row) for row in self._ensure().list_entities())

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        wanted = check_where(field, values)
        if not wanted:
            return iter(())
        # Values as parameters: the SDK quotes them (a ' doubled), never spliced in.
        expression = " or ".join(f"{field} eq @v{i}" for i in range(len(wanted)))
        parameters = {f"v{i}": value for i, value in enumerate(wanted)}
        rows = self._ensure().query_entities(expression, parameters=parameters)
        return (_from_azure(row) for row in rows)


def _submit(client: TableClient, pk: str, operations: list[BatchOperation]) -> None:
    """One transaction. Azure fails a whole transaction whose delete finds no entity (404
    ResourceNotFound, naming the operation's index), where a lone delete is fine: that delete
    is dropped and the rest sent again, so a replayed batch converges."""
    pending = list(operations)
    while pending:
        try:
            client.submit_transaction([_transaction_operation(pk, op) for op in pending])
            return
        except TableTransactionError as exc:
            index = exc.index
            absent = (
                getattr(exc, "error_code", None) == TableErrorCode.RESOURCE_NOT_FOUND
                and 0 <= index < len(pending)
                and pending[index].fields is None
            )
            if not absent:
                raise
            del pending[index]


def _transaction_operation(pk: str, operation: BatchOperation) -> tuple[Any, ...]:
    if operation.fields is None:
        return ("delete", {"PartitionKey": pk, "RowKey": operation.row_key})
    entity = _to_azure(pk, operation.row_key, operation.fields)
    return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def tables_for(
    storage: str | StorageConnection, *, credential: TokenCredential | None = None
) -> Tables:
    """All of License Guard's Azure tables; no network call until a table is first used.

    In identity mode every table's client shares `credential`."""
    return Tables(
        *(AzureTable.from_connection(storage, name, credential=credential) for name in TABLE_NAMES)
    )
