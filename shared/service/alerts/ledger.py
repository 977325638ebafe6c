"""The findings ledger as the alert jobs read it (`LedgerRow`s) and what they write back on it:
`alertedIn` / `resolvedIn`, the id of the alert that reported a finding."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from shared.core.alerting import LedgerRow
from shared.ports.tables import ConcurrencyConflict, Entity
from shared.service.services import Services
from shared.service.stores import stored_user_ids

Key = tuple[str | None, str | None, str]
"""group id x SKU id x code: one line of an alert."""


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def ledger_row(entity: Entity) -> LedgerRow:
    f = entity.fields
    user_ids, user_count = stored_user_ids(f)
    return LedgerRow(
        key=str(f.get("key") or entity.row_key),
        subject=str(f.get("key") or entity.row_key).split("|")[0],
        code=str(f.get("code") or ""),
        severity=str(f.get("severity") or ""),
        sku_id=str(f["skuId"]) if f.get("skuId") else None,
        group_id=str(f["groupId"]) if f.get("groupId") else None,
        message=str(f.get("message") or ""),
        remedy=str(f.get("remedy") or ""),
        first_seen=_time(f.get("firstSeen"))
        or _time(f.get("lastSeen"))
        or datetime.min.replace(tzinfo=UTC),
        last_seen=_time(f.get("lastSeen")),
        resolved_at=_time(f.get("resolvedAt")),
        alerted_in=str(f["alertedIn"]) if f.get("alertedIn") else None,
        resolved_in=str(f["resolvedIn"]) if f.get("resolvedIn") else None,
        reprocess_queued_at=_time(f.get("reprocessQueuedAt")),
        user_ids=user_ids,
        user_count=user_count,
    )


def ledger(svc: Services) -> list[tuple[Entity, LedgerRow]]:
    return [(e, ledger_row(e)) for e in svc.tables.findings.query_all()]


def mark(svc: Services, entities: Iterable[Entity], field_name: str, mail_id: str) -> None:
    """Record on each finding entity that `mail_id` reported it (optimistic; one re-read)."""
    table = svc.tables.findings
    for entity in entities:
        current: Entity | None = entity
        for _ in range(3):
            if current is None:
                break
            fields = dict(current.fields) | {field_name: mail_id}
            try:
                table.update(current.partition_key, current.row_key, fields, etag=current.etag)
                break
            except ConcurrencyConflict:
                current = table.get(current.partition_key, current.row_key)
