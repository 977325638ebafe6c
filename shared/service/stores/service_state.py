"""`ServiceState`: caches and watermarks (table `servicestate`).

The subscribed SKUs and when they were read, the last sync time, the reprocess brake, the
dead-man switch's timestamps and the other single named records the jobs keep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from shared.adapters.snapshot import GraphTranslator
from shared.adapters.world_document import sku_document
from shared.core.model import Sku
from shared.ports.tables import Entity, EntityStore, json_field, parse_json_field
from shared.service.stores.contention import write_contended


class ServiceState:
    """Caches and watermarks (table `servicestate`)."""

    SKU_PK = "sku"
    META_PK = "meta"

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def skus(self) -> tuple[dict[str, Sku], datetime | None]:
        """The cached SKUs by id, and when they were read. Rows are kept in Graph's form (rows
        written before the cache was typed hold the subscribedSku as Graph returned it)."""
        meta = self._table.get(self.META_PK, "skus")
        refreshed = meta.fields.get("refreshedAt") if meta else None
        rows = (parse_json_field(str(e.fields["json"])) for e in self._table.query(self.SKU_PK))
        return GraphTranslator().skus(rows), refreshed if isinstance(refreshed, datetime) else None

    def save_skus(self, skus: Iterable[Sku], now: datetime) -> None:
        """The cache becomes `skus`: a SKU gone from subscribedSkus leaves it too."""
        kept: set[str] = set()
        for sku in skus:
            self._table.upsert(self.SKU_PK, sku.id, {"json": json_field(sku_document(sku))})
            kept.add(sku.id)
        for row in self._table.query(self.SKU_PK):
            if row.row_key not in kept:
                self._table.delete(self.SKU_PK, row.row_key)
        self._table.upsert(self.META_PK, "skus", {"refreshedAt": now})

    def get(self, name: str) -> Entity | None:
        return self._table.get(self.META_PK, name)

    def names(self, prefix: str) -> list[str]:
        """The names of the records that start with `prefix`."""
        return [e.row_key for e in self._table.query(self.META_PK) if e.row_key.startswith(prefix)]

    def put(self, name: str, fields: dict[str, Any], etag: str | None = None) -> str:
        if etag is None:
            return self._table.upsert(self.META_PK, name, fields)
        return self._table.update(self.META_PK, name, fields, etag=etag)

    def insert(self, name: str, fields: dict[str, Any]) -> str:
        return self._table.insert(self.META_PK, name, fields)

    def change(
        self, name: str, make: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Write what `make` makes of the record as it is now, only over it as read: written
        by another worker meanwhile, it is made again from theirs. None (nothing written) when
        `make` returns None. Still contended after `WRITE_ATTEMPTS`: the conflict is raised."""

        def attempt() -> dict[str, Any] | None:
            entity = self.get(name)
            fields = make(dict(entity.fields) if entity else {})
            if fields is None:
                return None
            if entity is None:
                self.insert(name, fields)
            else:
                self.put(name, fields, entity.etag)
            return fields

        return write_contended(attempt)
