"""The poison-watch timer's job: poisoned messages, and the dead-man switches.

A message that failed `maxDequeueCount` times sits in `<queue>-poison` (7 days: the host moves
it with Azure's default time-to-live). Each becomes a finding (the message kept, not deleted,
for inspection); all are read, page by page. And dead-man switches: no subscription at all is
a finding (SubscriptionMissing), and so are sweeps finding changes no notification announced
(NotificationsSilent). The alert on what is new: `tenant_alerts.watch_poison_and_alert`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from shared.core.findings import ERROR, Finding, service_finding
from shared.ports.messages import new_correlation_id
from shared.ports.queues import MAX_BROWSE, QUEUE_NAMES, poison_name
from shared.service.groups import LAST_NOTIFICATION, LAST_UNANNOUNCED_CHANGE
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ServiceState
from shared.service.subscriptions import check_subscription_live, subscription_dead_reason

log = structlog.get_logger(__name__)

POISONED_MESSAGE = "PoisonedMessage"
SUBSCRIPTION_MISSING = "SubscriptionMissing"
NOTIFICATIONS_SILENT = "NotificationsSilent"
ANNOUNCE_WAIT = timedelta(minutes=15)
"""How long after a sweep met a change its notification may still come (Graph documents no
latency for group notifications; minutes are usual): a directory sync's sweep often reads a
join before the notification of it arrives."""


@dataclass
class PoisonOutcome:
    poisoned: dict[str, int] = field(default_factory=dict)
    new_findings: list[Finding] = field(default_factory=list)


async def run_poison_watch(svc: Services) -> PoisonOutcome:
    """The poison-watch timer's watch (its alert: `tenant_alerts.watch_poison_and_alert`): ask
    Graph whether our subscription lives (the dead-man switch must not trust only our table),
    then reconcile the poison and dead-man findings."""
    await check_subscription_live(svc)
    return watch_poison(svc)


def watch_poison(svc: Services) -> PoisonOutcome:
    """Reconcile poison-queue and dead-man findings: new ones recorded, gone ones resolved."""
    outcome = PoisonOutcome()
    ledger = FindingsLedger(svc.tables.findings)
    now = svc.now()
    run_id = new_correlation_id()
    for name in QUEUE_NAMES:
        queue = svc.queues.by_name(poison_name(name))
        outcome.poisoned[name] = queue.approximate_count()
        # All of them, not the 32 a peek shows: 40 poisoned messages are 40 findings.
        found = [_poisoned(name, text) for text in queue.browse_raw(MAX_BROWSE)]
        if len(found) >= MAX_BROWSE:
            log.warning("poison.truncated", queue=poison_name(name), read=len(found))
        change = ledger.reconcile(f"queue:{name}", found, now=now, run_id=run_id)
        outcome.new_findings.extend(change.new)
    dead = subscription_dead_reason(svc)
    missing = [] if dead is None else [_subscription_missing(dead)]
    change = ledger.reconcile("service:subscription", missing, now=now, run_id=run_id)
    outcome.new_findings.extend(change.new)
    silent = _notifications_silent(svc)
    change = ledger.reconcile("service:notifications", silent, now=now, run_id=run_id)
    outcome.new_findings.extend(change.new)
    log.info("poison.watched", poisoned=outcome.poisoned, new_findings=len(outcome.new_findings))
    return outcome


def _poisoned(name: str, text: str) -> Finding:
    """One finding per distinct poisoned message: its digest stands where a group id would."""
    return Finding(
        code=POISONED_MESSAGE,
        severity=ERROR,
        subject=f"queue:{name}",
        sku_id=None,
        group_id=_digest(text),
        message=(
            f"A message on '{name}' failed every attempt and was moved to "
            f"'{poison_name(name)}': {text[:300]}"
        ),
        remedy=(
            "Read the message in the poison queue (Azure portal > Storage account > Queues) "
            "within 7 days: the queue drops it then (the time-to-live the Functions host gives "
            "it) and this finding resolves, though nothing was fixed. Fix the cause shown in "
            f"the function's logs, then move it back to '{name}' or delete it. The nightly "
            "reconciliation covers what it missed."
        ),
    )


def _notifications_silent(svc: Services) -> list[Finding]:
    """A sweep found changes, and no notification has come for the configured time before it."""
    state = ServiceState(svc.tables.servicestate)
    change = state.get(LAST_UNANNOUNCED_CHANGE)
    # The latest change a sweep found whose notification has had time to come: the last
    # sweep's, or the one's before it (each sync's sweep may find one just before a watch).
    found = (change.fields.get(name) for name in ("at", "previousAt")) if change else ()
    judged = [at for at in found if isinstance(at, datetime) and svc.now() - at >= ANNOUNCE_WAIT]
    if not judged:
        return []
    changed_at = judged[0]
    heard = state.get(LAST_NOTIFICATION)
    heard_at = heard.fields.get("at") if heard else None
    silence = timedelta(minutes=svc.settings.notification_silence_minutes)
    if isinstance(heard_at, datetime) and changed_at - heard_at < silence:
        return []
    since = f"since {heard_at:%Y-%m-%d %H:%M} UTC" if isinstance(heard_at, datetime) else "yet"
    return [
        service_finding(
            NOTIFICATIONS_SILENT,
            "notifications",
            message=(
                f"A sweep at {changed_at:%Y-%m-%d %H:%M} UTC found group changes, but no change "
                f"notification has arrived {since}: notifications are not reaching the "
                "webhook, so changes wait for the next sweep or nightly reconciliation."
            ),
            remedy=(
                "Check the subscription (subscription_keeper logs), that the webhook URL and "
                "its function key are current, and that graph_notifications answers within 3 s "
                "(slow endpoints are throttled, then dropped, by Graph)."
            ),
        )
    ]


def _subscription_missing(reason: str) -> Finding:
    return service_finding(
        SUBSCRIPTION_MISSING,
        "subscription",
        message=f"{reason}: group changes go unseen.",
        remedy=(
            "Check the subscription_keeper function's logs (permissions: Group.Read.All; "
            "the webhook must answer the validation handshake)."
        ),
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
