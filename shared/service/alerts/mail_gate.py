"""Whether alert mail may be sent at all: `enabled` (ALERT_SENDER is set) and
`recipients_refused` (the sender and recipients are in the tenant's verified domains; a refusal
is recorded as an `AlertRecipientsRefused` finding). `mail_delivery` asks both before a send.
"""

from __future__ import annotations

from typing import Final

import structlog

from shared.core.findings import ERROR, Finding
from shared.service.services import Services
from shared.service.stores import FindingsLedger

log = structlog.get_logger("shared.service.alerts.mail_delivery")  # the log's name before the split

RECIPIENTS_REFUSED: Final = "AlertRecipientsRefused"


def enabled(svc: Services) -> bool:
    """Alert mail is on when ALERT_SENDER is set; logs once per worker when it is not."""
    if svc.settings.alert_sender:
        return True
    if not svc.caches.alerts_disabled_logged:
        svc.caches.alerts_disabled_logged = True
        log.warning("alerts.disabled", reason="ALERT_SENDER is not set: no alert mail is sent")
    return False


async def recipients_refused(svc: Services) -> str | None:
    """Why the configured addresses may not be mailed, or None. Checked against the tenant's
    verified domains once per worker (a refusal is re-checked on every send)."""
    if svc.caches.alert_domains_checked:
        return None
    organization = await svc.directory.organization() or {}
    if organization.get("displayName"):
        svc.caches.tenant_name = str(organization["displayName"])
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
    svc.caches.alert_domains_checked = True
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
