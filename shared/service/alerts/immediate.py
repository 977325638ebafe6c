"""Immediate alerts: one alert about a set of findings at once (data loss, mass loss, the
tenant-level findings), instead of waiting for the digest; each finding is marked `alertedIn`
once the mail was accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from shared.core.alerting import LedgerRow
from shared.ports.tables import Entity
from shared.render import alert_mails
from shared.render.mail import Section
from shared.service.alerts.actions import actions, mode_note
from shared.service.alerts.deliver import alerts_on, deliver
from shared.service.alerts.facts import exclusions
from shared.service.alerts.ledger import ledger_row, mark
from shared.service.alerts.mail_delivery import (
    Delivery,
    confirm,
    new_id,
    pending_id,
    rows_fingerprint,
)
from shared.service.alerts.names import mail_names
from shared.service.alerts.sending import ALREADY_SENT, Sleep
from shared.service.crashpoints import crash_point
from shared.service.services import Services
from shared.service.stores import FindingsLedger


async def send_immediate(
    svc: Services,
    *,
    channel: str,
    kind: str,
    title: str,
    lead: Sequence[str],
    pairs: Sequence[tuple[Entity, LedgerRow]],
    extra: Sequence[Section] = (),
    sleep: Sleep = asyncio.sleep,
) -> Delivery | None:
    """One immediate mail about these findings; marks them `alertedIn` once Graph accepted.
    `channel` keys its delivery state; `kind` is the alert's kind the channels are told."""
    if not pairs or not alerts_on(svc):
        return None
    rows = [r for _, r in pairs]
    reported = rows_fingerprint(r.key for r in rows)
    pending = pending_id(svc, channel, reported)
    if pending and any(r.alerted_in == pending for r in rows):
        pending = None
    mail_id = pending or new_id(channel, svc.now())
    names = await mail_names(svc, rows)
    mail = alert_mails.immediate_mail(
        mail_id=mail_id,
        kind=kind,
        names=names,
        title=title,
        rows=rows,
        lead=lead,
        actions=actions(svc, rows),
        extra=extra,
        mode_note=mode_note(svc),
    )
    delivery = await deliver(svc, mail, channel=channel, sleep=sleep, rows=reported)
    if delivery.accepted or delivery.status == ALREADY_SENT:
        mark(svc, (e for e, _ in pairs), "alertedIn", mail_id)
        crash_point(svc, "immediate.after_mark")
        confirm(svc, channel, mail_id)
    return delivery


def open_unalerted(svc: Services, codes: Iterable[str]) -> list[tuple[Entity, LedgerRow]]:
    """Open findings of these codes (at most 15) that no alert reported yet and no exclusion
    mutes: the table service sends those codes' rows only, not every user's findings."""
    facts_ex = exclusions(svc)
    rows = FindingsLedger(svc.tables.findings).open_by_code(codes)
    return [
        (e, r)
        for e, r in ((e, ledger_row(e)) for e in rows)
        if not r.alerted_in and not facts_ex.mutes(r)
    ]
