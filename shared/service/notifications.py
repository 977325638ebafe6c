"""Notification intake: vet what Graph POSTs to the webhooks and hand the work to a queue.

Runs inside the 3-second budget Graph gives a webhook, so it calls nothing but storage: the
subscription ids it checks against are read from the `subscriptions` table (cached for a
minute per worker) and the group ids go to `groups-changed` in one message. Lifecycle events
are vetted the same way and acted on (they are rare and may need Graph).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from shared.messages import GroupsChanged, format_timestamp, new_correlation_id
from shared.service.context import Services
from shared.service.crashpoints import crash_point
from shared.service.subscriptions import handle_lifecycle_event, our_subscription_ids
from shared.webhook import VettedNotifications, parse_collection, vet_notifications

log = structlog.get_logger(__name__)

SUBSCRIPTION_CACHE = "subscription-ids"
SUBSCRIPTION_CACHE_SECONDS = 60.0
SUBSCRIPTION_REFRESH_MIN_SECONDS = 10.0
"""Forged ids force a re-read at most this often, so they cannot turn into a table-read flood."""


@dataclass(frozen=True, slots=True)
class Intake:
    vetted: VettedNotifications
    correlation_id: str | None
    """Of the GroupsChanged message enqueued, when there was one."""


def _subscription_ids(svc: Services, *, refresh: bool = False) -> set[str]:
    cached = svc.caches.get(SUBSCRIPTION_CACHE)
    if (
        isinstance(cached, tuple)
        and not refresh
        and time.monotonic() - cached[0] < (SUBSCRIPTION_CACHE_SECONDS)
    ):
        ids: set[str] = cached[1]
        return ids
    fresh = {i.lower() for i in our_subscription_ids(svc.tables.subscriptions)}
    svc.caches[SUBSCRIPTION_CACHE] = (time.monotonic(), fresh)
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
    for rejection in vetted.rejected:
        log.warning(
            "security.notification_rejected",
            reason=rejection.reason,
            subscription_id=rejection.subscription_id,
            resource=rejection.resource,
        )
    return vetted


def accept_change_notifications(svc: Services, body: bytes) -> Intake:
    """Vet a change-notification POST and enqueue one GroupsChanged for the genuine groups."""
    vetted = _vet(svc, body)
    crash_point(svc, "intake.after_vet")
    if not vetted.group_ids:
        return Intake(vetted, None)
    msg = GroupsChanged(
        group_ids=vetted.group_ids,
        correlation_id=new_correlation_id(),
        received_at=format_timestamp(svc.now()),
    )
    svc.send(msg)
    crash_point(svc, "intake.after_send")  # Graph resends what we did not answer: harmless
    log.info("notification.accepted", correlation_id=msg.correlation_id,
             groups=len(vetted.group_ids), rejected=len(vetted.rejected))  # fmt: skip
    return Intake(vetted, msg.correlation_id)


async def accept_lifecycle_notifications(svc: Services, body: bytes) -> Intake:
    vetted = _vet(svc, body)
    for subscription_id, event in vetted.lifecycle:
        await handle_lifecycle_event(svc, subscription_id, event)
    return Intake(vetted, None)
