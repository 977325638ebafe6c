"""The summary mails: the baseline (once, when the first reconciliation recorded what exists),
the nightly reconciliation's summary (one per date) and the weekly standing findings (one per
ISO week). Each is idempotent by its id."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

import structlog

from shared.core.alerting import AlertFacts, LedgerRow, weekly_rows
from shared.core.nightly_summary import NightlySummary
from shared.render import alert_mails
from shared.service.alerts.deliver import alerts_on, deliver
from shared.service.alerts.facts import alert_facts, exclusion_upns, exclusions
from shared.service.alerts.ledger import ledger, mark
from shared.service.alerts.mail_delivery import Delivery, confirm, last_sent, new_id
from shared.service.alerts.names import mail_names
from shared.service.alerts.sending import Sleep
from shared.service.services import Services
from shared.service.stores import ServiceState

log = structlog.get_logger(__name__)

BASELINE: Final = "baseline"
NIGHTLY: Final = "nightly"
WEEKLY: Final = "weekly"
BASELINE_STATE: Final = "alerts-baseline-done"


# --------------------------------------------------------------------------- baseline


def baseline_pending(svc: Services) -> bool:
    """True until a baseline was recorded, and again for each new `BASELINE=reset…` value."""
    setting = svc.settings.baseline
    if setting == "off":
        return False
    entity = ServiceState(svc.tables.servicestate).get(BASELINE_STATE)
    if entity is None:
        return True
    return bool(setting) and entity.fields.get("resetToken") != setting


def record_baseline(svc: Services, run_id: str) -> list[LedgerRow]:
    """Mark every open finding as known (so digests report only later changes); return them."""
    mail_id = f"baseline-{run_id}"
    rows = []
    marked = []
    for entity, row in ledger(svc):
        if row.is_open:
            rows.append(row)
            if not row.alerted_in:
                marked.append(entity)
    mark(svc, marked, "alertedIn", mail_id)
    return rows


async def send_baseline_summary(
    svc: Services,
    summary: NightlySummary | None = None,
    *,
    run_id: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Delivery | None:
    """The reconciliation's baseline is done: mark what it found, record the baseline (even if
    mail is off), and mail "baseline: N existing issues, by group × SKU × code" once."""
    run = run_id or (summary.run_id if summary else new_id("run", svc.now()))
    rows = record_baseline_done(svc, run)
    return await _baseline_mail(svc, run, rows, summary, sleep)


def record_baseline_done(svc: Services, run_id: str) -> list[LedgerRow]:
    """Mark what the baseline found and record the baseline; return the open findings. Not
    held back by its mail: the next night must act, and the mail is owed until Graph takes it."""
    rows = record_baseline(svc, run_id)
    ServiceState(svc.tables.servicestate).put(
        BASELINE_STATE,
        {
            "doneAt": svc.now(),
            "runId": run_id,
            "issues": len(rows),
            "resetToken": svc.settings.baseline or None,
        },
    )
    log.info("alerts.baseline", run_id=run_id, issues=len(rows))
    return rows


async def send_baseline_mail(
    svc: Services, summary: NightlySummary, *, sleep: Sleep = asyncio.sleep
) -> Delivery | None:
    """The baseline mail of a recorded baseline (`record_baseline_done`), sent when it is owed:
    the findings open at the end of its run that still are."""
    finished = datetime.fromisoformat(summary.finished_at)
    rows = [r for _, r in ledger(svc) if r.is_open and r.first_seen <= finished]
    return await _baseline_mail(svc, summary.run_id, rows, summary, sleep)


async def _baseline_mail(
    svc: Services,
    run_id: str,
    rows: Sequence[LedgerRow],
    summary: NightlySummary | None,
    sleep: Sleep,
) -> Delivery | None:
    if not alerts_on(svc):
        return None
    names = await mail_names(svc, [])
    if summary is not None:
        names = replace(names, tenant_name=summary.tenant_name or names.tenant_name)
    excluded, upns = exclusions(svc), await exclusion_upns(svc, rows)
    shown = [r for r in rows if not excluded.mutes(r, upns.get(r.user_id or ""))]
    mail = alert_mails.baseline_mail(
        mail_id=f"baseline-{run_id}", names=names, rows=shown, muted=len(rows) - len(shown)
    )
    delivery = await deliver(svc, mail, channel=BASELINE, sleep=sleep)
    if delivery.accepted:
        confirm(svc, BASELINE, mail.id)
    return delivery


# --------------------------------------------------------------------------- weekly


async def weekly_summary(
    svc: Services,
    *,
    sleep: Sleep = asyncio.sleep,
    facts: AlertFacts | None = None,
    rows: Sequence[LedgerRow] | None = None,
) -> Delivery | None:
    """Standing `info` findings, one mail per ISO week (sent by the first digest run of the
    week; none when there are none)."""
    if not alerts_on(svc) or baseline_pending(svc):
        return None
    year, week, _ = svc.now().isocalendar()
    label = f"{year}-W{week:02d}"
    mail_id = f"weekly-{label}"
    if last_sent(svc, WEEKLY)[0] == mail_id:
        return None
    rows = rows if rows is not None else [r for _, r in ledger(svc)]
    facts = facts or await alert_facts(svc, rows)
    info = weekly_rows(rows, facts)
    if not info:
        return None
    names = await mail_names(svc, info)
    mail = alert_mails.weekly_mail(mail_id=mail_id, names=names, rows=info, week=label)
    delivery = await deliver(svc, mail, channel=WEEKLY, sleep=sleep)
    if delivery.accepted:
        confirm(svc, WEEKLY, mail_id)
    return delivery


# --------------------------------------------------------------------------- nightly


async def send_nightly_summary(
    svc: Services, summary: NightlySummary, *, sleep: Sleep = asyncio.sleep
) -> Delivery | None:
    """The nightly reconciliation's summary, one mail per date (idempotent by its id)."""
    if not alerts_on(svc):
        return None
    mail = alert_mails.nightly_mail(mail_id=f"nightly-{summary.date}", summary=summary)
    delivery = await deliver(svc, mail, channel=NIGHTLY, sleep=sleep)
    if delivery.accepted:
        confirm(svc, NIGHTLY, mail.id)
    return delivery
