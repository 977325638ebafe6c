"""Notification intake: vet what Graph POSTs to the webhooks and hand the work to a queue.

Runs inside the 3-second budget Graph gives a webhook, so it calls nothing but storage: the
subscription ids it checks against are read from the `subscriptions` table (cached for a
minute per worker) and the group ids go to `groups-changed` (one message per 1,000 groups).
Lifecycle events are vetted the same way and go to `subscription-lifecycle`, one message each:
acting on one calls Graph (a `subscriptionRemoved` creates a subscription, and Graph calls our
validation endpoint back before it answers), which Graph asks never to do before the 202 (slow
answers get every subscription on the URL throttled, then dropped). A queue worker acts on
them (`shared.service.subscriptions.on_lifecycle_event`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import structlog

from shared.ports.messages import (
    GroupsChanged,
    LifecycleEvent,
    Message,
    format_timestamp,
    new_correlation_id,
)
from shared.service.crashpoints import crash_point
from shared.service.intake.webhook_protocol import (
    Rejection,
    VettedNotifications,
    parse_collection,
    vet_notifications,
)
from shared.service.services import Services
from shared.service.subscriptions import our_subscription_ids

log = structlog.get_logger(__name__)

SUBSCRIPTION_CACHE_SECONDS = 60.0
MAX_REJECTION_SAMPLES = 5
MAX_SAMPLE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Intake:
    vetted: VettedNotifications
    correlation_id: str | None
    """Of the messages enqueued (GroupsChanged, LifecycleEvent), when there were any."""


def _subscription_ids(svc: Services, *, refresh: bool = False) -> set[str]:
    cached = svc.caches.subscription_ids
    if (
        cached is not None
        and not refresh
        and time.monotonic() - cached[0] < (SUBSCRIPTION_CACHE_SECONDS)
    ):
        return cached[1]
    fresh = {i.lower() for i in our_subscription_ids(svc.tables.subscriptions)}
    svc.caches.subscription_ids = (time.monotonic(), fresh)
    return fresh


def _vet(svc: Services, body: bytes) -> VettedNotifications:
    items = parse_collection(body)
    secrets = [s for s in (svc.settings.client_state, svc.settings.client_state_previous) if s]
    vetted = vet_notifications(
        items,
        client_states=secrets,
        subscription_ids=_subscription_ids(svc),
        tenant_id=svc.settings.tenant_id,
    )
    if any(r.reason == "subscriptionId is not ours" for r in vetted.rejected):
        # A subscription created a moment ago may not be in this worker's cache yet.
        vetted = vet_notifications(
            items,
            client_states=secrets,
            subscription_ids=_subscription_ids(svc, refresh=True),
            tenant_id=svc.settings.tenant_id,
        )
    if vetted.rejected:
        _log_rejections(vetted.rejected, len(items))
    return vetted


def _log_rejections(rejected: tuple[Rejection, ...], items: int) -> None:
    """One line per request, however many items were dropped: counts per reason and a few
    samples. A line per item let a 1 MB forged body write 50,000 lines and miss Graph's 3 s."""
    reasons = Counter(r.reason for r in rejected)
    samples = [
        {
            "reason": r.reason,
            "subscription_id": _clip(r.subscription_id),
            "resource": _clip(r.resource),
        }
        for r in rejected[:MAX_REJECTION_SAMPLES]
    ]
    # `reason`: the most frequent one, so the per-item event's readers keep working.
    log.warning("security.notification_rejected", reason=reasons.most_common(1)[0][0],
                rejected=len(rejected), items=items, reasons=dict(reasons),
                samples=samples)  # fmt: skip


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_SAMPLE_CHARS else text[:MAX_SAMPLE_CHARS] + "…"


def accept_change_notifications(svc: Services, body: bytes) -> Intake:
    """Vet a notification POST (either route: Graph lets one URL serve both kinds) and enqueue
    GroupsChanged for the genuine groups, one message per `MAX_GROUPS_PER_MESSAGE` groups, and
    a LifecycleEvent per genuine lifecycle event, all with the request's correlation id.
    Nothing here calls Graph. Should a send fail, the request fails and Graph redelivers it;
    the messages already sent are then sent again, which is harmless (walking a group's delta
    twice finds nothing new; a lifecycle event acted on twice ends as once)."""
    vetted = _vet(svc, body)
    crash_point(svc, "intake.after_vet")
    if not vetted.group_ids and not vetted.lifecycle:
        return Intake(vetted, None)
    correlation_id = new_correlation_id()
    received_at = format_timestamp(svc.now())
    batches: list[Message] = []
    if vetted.group_ids:
        batches.extend(
            GroupsChanged.batches(
                vetted.group_ids, correlation_id=correlation_id, received_at=received_at
            )
        )
    batches.extend(
        LifecycleEvent(
            subscription_id=subscription_id,
            event=event,
            correlation_id=correlation_id,
            received_at=received_at,
        )
        for subscription_id, event in vetted.lifecycle
    )
    svc.send_all(batches)
    crash_point(svc, "intake.after_send")  # Graph resends what we did not answer: harmless
    log.info("notification.accepted", correlation_id=correlation_id,
             groups=len(vetted.group_ids), lifecycle_events=len(vetted.lifecycle),
             messages=len(batches), rejected=len(vetted.rejected))  # fmt: skip
    return Intake(vetted, correlation_id)
