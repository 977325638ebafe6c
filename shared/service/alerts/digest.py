"""The digest (timer `alert_digest`): the transitions since the last digest (findings that
became alertable, alerted findings that resolved) and the counts still open, in one alert. No
alert when nothing changed; waits for the baseline. What is alertable is decided by
`shared.core.alerting` (pure)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog

from shared.core.alerting import plan_digest
from shared.render import alert_mails
from shared.service.alerts.actions import actions, mode_note
from shared.service.alerts.deliver import alerts_on, deliver
from shared.service.alerts.facts import alert_facts
from shared.service.alerts.ledger import ledger, mark
from shared.service.alerts.mail_delivery import (
    Delivery,
    confirm,
    last_sent,
    new_id,
    pending_id,
    rows_fingerprint,
)
from shared.service.alerts.names import mail_names
from shared.service.alerts.open_counts import plan_open_counts
from shared.service.alerts.sending import Sleep
from shared.service.alerts.summaries import baseline_pending, weekly_summary
from shared.service.crashpoints import crash_point
from shared.service.services import Services

log = structlog.get_logger(__name__)

DIGEST: Final = "digest"


@dataclass
class DigestOutcome:
    status: str
    mail_id: str | None = None
    new: int = 0
    resolved: int = 0
    still_open: int = 0
    weekly: Delivery | None = None


async def run_digest(svc: Services, *, sleep: Sleep = asyncio.sleep) -> DigestOutcome:
    """One digest of the transitions since the last one; none when nothing changed."""
    if not alerts_on(svc):
        return DigestOutcome("disabled")
    if baseline_pending(svc):
        log.info("alerts.digest_waits_for_baseline")
        return DigestOutcome("waiting-for-baseline")
    pairs = ledger(svc)
    rows = [r for _, r in pairs]
    facts = await alert_facts(svc, rows)
    plan = plan_digest(rows, facts)
    pending = pending_id(svc, DIGEST)
    if pending and any(pending in (r.alerted_in, r.resolved_in) for r in rows):
        confirm(svc, DIGEST, pending)  # accepted and recorded before a crash: done
        pending = None
    weekly = await weekly_summary(svc, sleep=sleep, facts=facts, rows=rows)
    if plan.empty:
        if pending:
            confirm(svc, DIGEST, pending, sent=False)
        log.info("alerts.digest_nothing_new", still_open=plan.open_total)
        return DigestOutcome("nothing-new", still_open=plan.open_total, weekly=weekly)
    reported = rows_fingerprint(
        [*(f"new|{r.key}" for r in plan.new), *(f"resolved|{r.key}" for r in plan.resolved)]
    )
    if pending and pending_id(svc, DIGEST, reported) is None:
        pending = None  # its draft reports other findings: a new mail reports these
    mail_id = pending or new_id("digest", svc.now())
    shown = [*plan.new, *plan.resolved]
    names = await mail_names(svc, shown)
    _, last_at = last_sent(svc, DIGEST)
    mail = alert_mails.digest_mail(
        mail_id=mail_id,
        names=names,
        new=plan.new,
        resolved=plan.resolved,
        still_open=sum(plan.still_open.values()),
        waiting=plan.waiting,
        muted=plan.muted,
        actions=actions(svc, plan.new, rows),
        mode_note=mode_note(svc),
        since=f"{last_at:%Y-%m-%d %H:%M} UTC" if isinstance(last_at, datetime) else None,
        first_since="License Guard started watching"
        if svc.settings.baseline == "off"
        else "the baseline summary",
    )
    delivery = await deliver(
        svc,
        mail,
        channel=DIGEST,
        sleep=sleep,
        open_counts=plan_open_counts(plan),
        rows=reported,
    )
    outcome = DigestOutcome(
        delivery.status, mail_id, len(plan.new), len(plan.resolved), plan.open_total, weekly
    )
    if not delivery.accepted:
        return outcome
    entities = {r.key: e for e, r in pairs}
    mark(svc, (entities[r.key] for r in plan.new), "alertedIn", mail_id)
    mark(svc, (entities[r.key] for r in plan.resolved), "resolvedIn", mail_id)
    crash_point(svc, "digest.after_mark")
    confirm(svc, DIGEST, mail_id)
    return outcome
