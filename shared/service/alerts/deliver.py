"""Sending one alert everywhere it goes: the configured alert channels (Teams, Slack, webhooks;
`shared.service.alerts.channels`), each on its own, and the mail
(`shared.service.alerts.mail_delivery`). The alert jobs call this; the caller confirms.

Channels do not need the mail: with ALERT_SENDER unset, an alert is still composed and posted
to the channels, under an id recorded as the mail's would be (`claim`: a retry reuses it, a
confirmed id is not posted again; each channel also skips an id it already took). It counts as
delivered (`POSTED`) once at least one channel took it or had nothing at its minimum severity;
when every channel failed it is retried, with the same id, by the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from shared.render.mail import Mail
from shared.service.alerts.channel_delivery import NOTHING
from shared.service.alerts.channels import send_to_channels
from shared.service.alerts.mail_delivery import Delivery, claim, deliver_mail
from shared.service.alerts.mail_gate import enabled
from shared.service.alerts.sending import ALREADY_SENT, FAILED, POSTED, SENT, Sleep
from shared.service.services import Services

log = structlog.get_logger(__name__)


def alerts_on(svc: Services) -> bool:
    """Alerts are composed when they can reach someone: by mail or on an alert channel."""
    return enabled(svc) or bool(svc.settings.alert_channels)


async def deliver(
    svc: Services,
    mail: Mail,
    *,
    channel: str,
    sleep: Sleep = asyncio.sleep,
    open_counts: Mapping[str, int] | None = None,
    rows: str | None = None,
) -> Delivery:
    """Post `mail` to the alert channels, then send it once as mail on `channel`; without
    mail, post it to the channels once under its id (see the module docstring).
    `open_counts`: the tenant's open findings by severity, when the caller has them; `rows`:
    what the alert reports (`rows_fingerprint`), kept with its pending id."""
    if enabled(svc) or not svc.settings.alert_channels:
        refusal = claim(svc, channel, mail.id, rows) if svc.settings.alert_channels else None
        if refusal:
            return Delivery(refusal, mail.id)
        # Claimed before the channels: a mail refused or failed is retried under this id,
        # which each channel that took it skips, instead of a new post every run.
        await send_to_channels(
            svc, mail, sleep=sleep, open_counts=open_counts, mail_channel=channel
        )
        return await deliver_mail(svc, mail, channel=channel, sleep=sleep, rows=rows)
    refusal = claim(svc, channel, mail.id, rows)
    if refusal:
        return Delivery(refusal, mail.id)
    results = await send_to_channels(
        svc, mail, sleep=sleep, open_counts=open_counts, mail_channel=channel
    )
    if any(r.status in (SENT, ALREADY_SENT, NOTHING) for r in results):
        log.info("alerts.posted", channel=channel, mail_id=mail.id, kind=mail.kind)
        return Delivery(POSTED, mail.id, reason="ALERT_SENDER is not set: channels only")
    reasons = "; ".join(f"{r.channel}: {r.reason or r.status}" for r in results)
    log.error("alerts.post_failed", channel=channel, mail_id=mail.id, reasons=reasons)
    return Delivery(FAILED, mail.id, reason=reasons or "no channel took it")
