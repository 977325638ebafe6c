"""Sending one alert everywhere it goes: the configured alert channels (Teams, Slack, webhooks;
`shared.service.alerts.channels`), each on its own, then the mail
(`shared.service.alerts.mail_delivery`). The alert jobs call this; the caller confirms."""

from __future__ import annotations

import asyncio

from shared.render.mail import Mail
from shared.service.alerts.channels import send_to_channels
from shared.service.alerts.mail_delivery import Delivery, deliver_mail
from shared.service.alerts.sending import Sleep
from shared.service.services import Services


async def deliver(
    svc: Services, mail: Mail, *, channel: str, sleep: Sleep = asyncio.sleep
) -> Delivery:
    """Post `mail` to the alert channels, then send it once as mail on `channel`."""
    await send_to_channels(svc, mail, sleep=sleep)
    return await deliver_mail(svc, mail, channel=channel, sleep=sleep)
