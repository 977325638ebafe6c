"""Delivery: at least once, at most one duplicate per crash.

Each channel (digest, immediate, tenant, baseline, nightly, weekly) keeps its state in
`servicestate` (`alerts-<channel>`: `lastId`, `lastAt`, `pendingId`, `pendingAt`). A send:

1. refuses when alerts are disabled (no `ALERT_SENDER`) or a recipient is outside the
   tenant's verified domains (checked once per worker at the first send; refusal is logged and
   recorded as an `AlertRecipientsRefused` finding);
2. skips a mail whose id is the channel's `lastId` (already accepted: idempotent);
3. persists the id as `pendingId` *before* calling Graph, and sends it as the
   `x-license-guard-digest` header, so a resend after a crash carries the same id;
4. retries 429 and 5xx, waiting Graph's Retry-After (capped) or an exponential backoff;
5. only after Graph accepted (202) does the caller record what was mailed (the findings'
   `alertedIn`) and then `confirm`, which advances `lastId` and clears `pendingId`.

A crash after Graph's 202 and before `confirm` leaves `pendingId`: the next run resends with
that id (one duplicate, recognisable by its header); nothing sends it a third time once that
resend is confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import structlog

from shared.alerts.compose import Mail, graph_message
from shared.core.findings import ERROR, Finding
from shared.directory import DirectoryError
from shared.service.context import Services
from shared.service.crashpoints import crash_point
from shared.service.stores import FindingsLedger, ServiceState

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]

ATTEMPTS: Final = 3
MAX_WAIT_SECONDS: Final = 60.0
RECIPIENTS_REFUSED: Final = "AlertRecipientsRefused"
_DISABLED_LOGGED: Final = "alerts.disabled_logged"
_DOMAINS_CHECKED: Final = "alerts.recipients_checked"
_TENANT_NAME: Final = "alerts.tenant_name"

SENT: Final = "sent"
ALREADY_SENT: Final = "already-sent"
DISABLED: Final = "disabled"
REFUSED: Final = "refused"
FAILED: Final = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    status: str
    mail_id: str
    attempts: int = 0
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == SENT


def state_name(channel: str) -> str:
    return f"alerts-{channel}"


def pending_id(svc: Services, channel: str) -> str | None:
    """The id of a mail of this channel that may have been sent but was never confirmed."""
    entity = ServiceState(svc.tables.servicestate).get(state_name(channel))
    value = entity.fields.get("pendingId") if entity else None
    return str(value) if value else None


def last_sent(svc: Services, channel: str) -> tuple[str | None, object]:
    entity = ServiceState(svc.tables.servicestate).get(state_name(channel))
    if entity is None:
        return None, None
    return (str(entity.fields.get("lastId") or "") or None), entity.fields.get("lastAt")


def confirm(svc: Services, channel: str, mail_id: str) -> None:
    """Advance the channel after Graph accepted `mail_id` and the ledger recorded it."""
    state = ServiceState(svc.tables.servicestate)
    entity = state.get(state_name(channel))
    fields = dict(entity.fields) if entity else {}
    fields.pop("pendingId", None)
    fields.pop("pendingAt", None)
    fields.update({"lastId": mail_id, "lastAt": svc.now()})
    state.put(state_name(channel), fields)


def enabled(svc: Services) -> bool:
    """Alerts are on when ALERT_SENDER is set; logs once per worker when they are not."""
    if svc.settings.alert_sender:
        return True
    if not svc.caches.get(_DISABLED_LOGGED):
        svc.caches[_DISABLED_LOGGED] = True
        log.warning("alerts.disabled", reason="ALERT_SENDER is not set: no alert mail is sent")
    return False


async def tenant_name(svc: Services) -> str:
    cached = svc.caches.get(_TENANT_NAME)
    if isinstance(cached, str):
        return cached
    organization = await svc.directory.organization() or {}
    name = str(organization.get("displayName") or svc.settings.tenant_id)
    svc.caches[_TENANT_NAME] = name
    return name


async def recipients_refused(svc: Services) -> str | None:
    """Why the configured addresses may not be mailed, or None. Checked against the tenant's
    verified domains once per worker (a refusal is re-checked on every send)."""
    if svc.caches.get(_DOMAINS_CHECKED):
        return None
    organization = await svc.directory.organization() or {}
    if organization.get("displayName"):
        svc.caches[_TENANT_NAME] = str(organization["displayName"])
    verified = {
        str(d.get("name", "")).lower() for d in organization.get("verifiedDomains") or () if d
    }
    addresses = (svc.settings.alert_sender or "", *svc.settings.alert_recipients)
    outside = sorted(a for a in addresses if a.rpartition("@")[2].lower() not in verified)
    ledger = FindingsLedger(svc.tables.findings)
    subject = "service:alerts"
    if outside:
        reason = (
            f"address(es) outside the tenant's verified domains: {', '.join(outside)} "
            f"(verified: {', '.join(sorted(verified)) or 'none'})"
        )
        log.error("alerts.recipients_refused", outside=outside, verified=sorted(verified))
        ledger.reconcile(subject, [_refused_finding(reason)], now=svc.now(), run_id="alerts")
        return reason
    ledger.reconcile(subject, [], now=svc.now(), run_id="alerts")
    svc.caches[_DOMAINS_CHECKED] = True
    return None


def _refused_finding(reason: str) -> Finding:
    return Finding(
        code=RECIPIENTS_REFUSED,
        severity=ERROR,
        subject="service:alerts",
        sku_id=None,
        group_id=None,
        message=f"License Guard sends no alert mail: {reason}.",
        remedy=(
            "Set ALERT_SENDER and ALERT_RECIPIENTS to addresses in the tenant's verified "
            "domains (Microsoft 365 admin center > Settings > Domains); alerts never leave the "
            "tenant. Use a distribution list or shared mailbox inside the tenant to reach others."
        ),
    )


async def deliver(
    svc: Services, mail: Mail, *, channel: str, sleep: Sleep = asyncio.sleep
) -> Delivery:
    """Send `mail` once on `channel` (see the module docstring). The caller confirms. The
    configured alert channels (Teams, Slack, webhooks) get it too, each on its own."""
    from shared.alerts.channels import send_to_channels  # noqa: PLC0415 - avoids an import cycle

    await send_to_channels(svc, mail, sleep=sleep)
    if not enabled(svc):
        return Delivery(DISABLED, mail.id, reason="ALERT_SENDER is not set")
    refused = await recipients_refused(svc)
    if refused:
        return Delivery(REFUSED, mail.id, reason=refused)
    state = ServiceState(svc.tables.servicestate)
    entity = state.get(state_name(channel))
    fields = dict(entity.fields) if entity else {}
    if fields.get("lastId") == mail.id:
        log.info("alerts.already_sent", channel=channel, mail_id=mail.id)
        return Delivery(ALREADY_SENT, mail.id)
    fields.update({"pendingId": mail.id, "pendingAt": svc.now()})
    state.put(state_name(channel), fields)
    crash_point(svc, "mail.after_pending")
    sender = svc.settings.alert_sender or ""
    message = graph_message(mail, svc.settings.alert_recipients)
    attempt = 0
    while True:
        attempt += 1
        try:
            await svc.directory.send_mail(sender, message, save_to_sent_items=False)
        except DirectoryError as error:
            if not error.is_transient or attempt >= ATTEMPTS:
                log.error("alerts.send_failed", channel=channel, mail_id=mail.id,
                          status=error.status, code=error.code, attempts=attempt)  # fmt: skip
                return Delivery(FAILED, mail.id, attempt, f"{error.status} {error.code}")
            wait = error.retry_after if error.retry_after is not None else 2.0**attempt
            log.warning("alerts.send_retry", channel=channel, mail_id=mail.id,
                        status=error.status, wait=wait)  # fmt: skip
            await sleep(min(max(0.0, wait), MAX_WAIT_SECONDS))
            continue
        log.info("alerts.sent", channel=channel, mail_id=mail.id, kind=mail.kind,
                 subject=mail.subject, attempts=attempt)  # fmt: skip
        crash_point(svc, "mail.after_send")  # the one resend window: same id, same header
        return Delivery(SENT, mail.id, attempt)
