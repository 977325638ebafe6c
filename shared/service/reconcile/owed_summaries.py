"""The nightly summary mails still owed: one per date, never lost to a mail Graph refused.

The `reconcile-summary-sent` row is the outbox. A finished run first adds its summary.json
(`nightly/<date>/<runId>/summary.json`) to `owed`, then sends what is owed, oldest first; a
mail leaves `owed` (and becomes the row's `date`, `runId`) only once Graph accepted it (or
nothing mails summaries). One that fails stays owed, and the ones after it wait: the tenant
alerts timer (`send_owed_summaries`) and the next night's finish send them again from their
stored summary.json. Each is sent through the alert mail's draft protocol under its fixed id
(`nightly-<date>`, `baseline-<runId>`), so a crash or a second sender never doubles it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import orjson
import structlog

from shared.core.nightly_summary import NightlySummary
from shared.ports.blobs import BlobStore
from shared.service.alerts import summaries as alerts
from shared.service.alerts.mail_delivery import Delivery
from shared.service.alerts.sending import ALREADY_SENT, Sleep
from shared.service.reconcile.run_state import SUMMARY_SENT
from shared.service.services import Services
from shared.service.stores import ServiceState

log = structlog.get_logger(__name__)

OWED: Final = "owed"
MAX_OWED: Final = 60
"""Summaries kept owed at most (two months of nights); older ones are given up, logged."""


def owe_summary(state: ServiceState, blob: str) -> None:
    """Record the summary stored at `blob` as owed, before anything is sent."""

    def add(fields: dict[str, Any]) -> dict[str, Any]:
        owed = _owed(fields)
        if blob not in owed:
            owed.append(blob)
        for given_up in owed[:-MAX_OWED]:
            log.error("reconcile.summary_given_up", blob=given_up, reason="too many owed")
        return {**fields, OWED: " ".join(owed[-MAX_OWED:])}

    _change(state, add)


def summary_sent_for(state: ServiceState, date: str) -> bool:
    """True when the summary of `date` was sent, or is owed (it goes out once, as owed)."""
    entity = state.get(SUMMARY_SENT)
    fields = dict(entity.fields) if entity else {}
    return fields.get("date") == date or any(f"/{date}/" in b for b in _owed(fields))


async def send_owed_summaries(
    svc: Services, blobs: BlobStore | None = None, *, sleep: Sleep = asyncio.sleep
) -> list[Delivery]:
    """Send the owed summaries, oldest first, each recorded sent only once Graph accepted it;
    stop at the first that fails (it stays owed, the later ones wait behind it)."""
    state = ServiceState(svc.tables.servicestate)
    store = blobs if blobs is not None else svc.blobs
    deliveries = []
    while owed := _owed(_fields(state)):
        blob = owed[0]
        raw = store.get(blob)
        if raw is None:  # pruned after REPORT_RETENTION_DAYS, or deleted: nothing to send
            log.error("reconcile.summary_lost", blob=blob, reason="its summary.json is gone")
            _sent(state, blob, None)
            continue
        summary = NightlySummary.from_json(orjson.loads(raw))
        if summary.baseline:
            delivery = await alerts.send_baseline_mail(svc, summary, sleep=sleep)
        else:
            delivery = await alerts.send_nightly_summary(svc, summary, sleep=sleep)
        if delivery is not None:
            deliveries.append(delivery)
            if not (delivery.accepted or delivery.status == ALREADY_SENT):
                log.warning("reconcile.summary_owed", date=summary.date, blob=blob,
                            status=delivery.status, reason=delivery.reason)  # fmt: skip
                break
        _sent(state, blob, summary)
    return deliveries


def _sent(state: ServiceState, blob: str, summary: NightlySummary | None) -> None:
    """`blob`'s summary went out (or never can): no longer owed; the date sent last."""

    def remove(fields: dict[str, Any]) -> dict[str, Any]:
        sent = {"date": summary.date, "runId": summary.run_id} if summary else {}
        return {**fields, **sent, OWED: " ".join(b for b in _owed(fields) if b != blob)}

    _change(state, remove)


def _owed(fields: dict[str, Any]) -> list[str]:
    return str(fields.get(OWED) or "").split()


def _fields(state: ServiceState) -> dict[str, Any]:
    entity = state.get(SUMMARY_SENT)
    return dict(entity.fields) if entity else {}


def _change(state: ServiceState, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Write the row changed from what it was read as: a nightly finish and the tenant alerts
    timer may both send owed summaries at once, and neither may write back a stale `owed`."""
    state.change(SUMMARY_SENT, change)
