"""The `/groups` change-notification subscription: exactly one, always more than 48 h from expiry.

Graph keeps a group subscription at most 41,760 minutes (just under 29 days) and deletes it
when it expires; notifications then stop silently. The keeper (a timer) makes sure exactly one
subscription with our URLs exists and renews it when it expires within 48 hours. Lifecycle
notifications are handled here too: `reauthorizationRequired` reauthorizes (which does not
renew, so a renewal follows when expiry is near; a subscription gone meanwhile is replaced);
`subscriptionRemoved` re-creates it; `missed` queues a resync only (Graph sends these two for
other resources; handled should they ever come). Whenever the subscription had to be
(re-)created, changes may have been missed meanwhile, so a `DeltaSweep` is queued. Our
subscription ids are kept in the `subscriptions` table, where the webhook checks that a
notification is for one of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from shared.adapters.tables import EntityStore
from shared.directory import DirectoryError, Subscription
from shared.messages import DeltaSweep, new_correlation_id
from shared.service.context import Services

log = structlog.get_logger(__name__)

RESOURCE = "/groups"
CHANGE_TYPE = "updated,deleted"
MAX_LIFETIME = timedelta(minutes=41_760)
LIFETIME_MARGIN = timedelta(minutes=60)
RENEW_WITHIN = timedelta(hours=48)
SUBSCRIPTION_PK = "subscription"


@dataclass(frozen=True, slots=True)
class KeeperOutcome:
    action: str
    """created | renewed | kept | recreated"""
    subscription_id: str
    expiration: str
    removed_extra: int = 0


def our_subscription_ids(table: EntityStore) -> set[str]:
    return {e.row_key for e in table.query(SUBSCRIPTION_PK)}


def _expiry(now: datetime) -> str:
    moment = now + MAX_LIFETIME - LIFETIME_MARGIN
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _remember(svc: Services, subscription: Subscription) -> None:
    table = svc.tables.subscriptions
    for stale in our_subscription_ids(table) - {subscription.id}:
        table.delete(SUBSCRIPTION_PK, stale)
    table.upsert(
        SUBSCRIPTION_PK,
        subscription.id,
        {"resource": subscription.resource, "expiration": subscription.expiration},
    )


def _ours(svc: Services, subscriptions: list[Subscription]) -> list[Subscription]:
    url = svc.settings.notification_url
    return [
        s
        for s in subscriptions
        if s.resource.strip("/").lower() == "groups" and s.notification_url == url
    ]


async def _create(svc: Services, reason: str) -> Subscription:
    subscription = await svc.directory.create_subscription(
        resource=RESOURCE,
        change_type=CHANGE_TYPE,
        notification_url=svc.settings.notification_url,
        lifecycle_notification_url=svc.settings.lifecycle_notification_url,
        client_state=svc.settings.client_state,
        expiration=_expiry(svc.now()),
    )
    _remember(svc, subscription)
    sweep = DeltaSweep(reason=reason, correlation_id=new_correlation_id())
    svc.send(sweep)
    log.info("subscription.created", subscription_id=subscription.id, reason=reason,
             correlation_id=sweep.correlation_id)  # fmt: skip
    return subscription


async def keep_subscription(svc: Services) -> KeeperOutcome:
    mine = sorted(_ours(svc, await svc.directory.subscriptions()), key=lambda s: s.expiration)
    if not mine:
        created = await _create(svc, "subscription was missing: changes may have been missed")
        return KeeperOutcome("created", created.id, created.expiration)
    keep, extras = mine[-1], mine[:-1]
    for extra in extras:
        await svc.directory.delete_subscription(extra.id)
    action = "kept"
    if _parse(keep.expiration) - svc.now() < RENEW_WITHIN:
        keep = await svc.directory.renew_subscription(keep.id, _expiry(svc.now()))
        action = "renewed"
        log.info("subscription.renewed", subscription_id=keep.id, expiration=keep.expiration)
    _remember(svc, keep)
    return KeeperOutcome(action, keep.id, keep.expiration, len(extras))


async def handle_lifecycle_event(svc: Services, subscription_id: str, event: str) -> str:
    """Act on one vetted lifecycle event; returns what was done. Safe to run again (Graph
    redelivers a batch it got no 2xx for): each branch ends in one live subscription.

    As https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
    prescribes: `reauthorizationRequired` reauthorizes (a subscription that no longer exists is
    replaced, not an error); `subscriptionRemoved` re-creates; `missed` only resyncs (a delta
    sweep), the subscription itself is alive and stays as it is."""
    if event == "reauthorizationRequired":
        return await _reauthorize(svc, subscription_id)
    if event == "subscriptionRemoved":
        await svc.directory.delete_subscription(subscription_id)  # gone already: fine
        outcome = await keep_subscription(svc)
        return f"{outcome.action} {outcome.subscription_id}"
    if event == "missed":
        sweep = DeltaSweep(
            reason="lifecycle event missed: notifications were lost",
            correlation_id=new_correlation_id(),
        )
        svc.send(sweep)
        log.info("subscription.missed_resync", subscription_id=subscription_id,
                 correlation_id=sweep.correlation_id)  # fmt: skip
        return "resync queued"
    # Not `event=`: structlog's first argument is named `event`, so that raised TypeError.
    log.warning("subscription.lifecycle_unknown", subscription_id=subscription_id,
                lifecycle_event=event)  # fmt: skip
    return "ignored"


async def _reauthorize(svc: Services, subscription_id: str) -> str:
    try:
        await svc.directory.reauthorize_subscription(subscription_id)
    except DirectoryError as error:
        if error.status != 404:
            raise
        # Expired or deleted meanwhile: nothing to reauthorize, so make sure one exists again.
        outcome = await keep_subscription(svc)
        log.info("subscription.reauthorize_gone", subscription_id=subscription_id,
                 action=outcome.action, current=outcome.subscription_id)  # fmt: skip
        return f"gone; {outcome.action} {outcome.subscription_id}"
    current = [s for s in await svc.directory.subscriptions() if s.id == subscription_id]
    if current and _parse(current[0].expiration) - svc.now() < RENEW_WITHIN:
        renewed = await svc.directory.renew_subscription(subscription_id, _expiry(svc.now()))
        _remember(svc, renewed)
        log.info("subscription.reauthorized_and_renewed", subscription_id=subscription_id)
        return "reauthorized+renewed"
    log.info("subscription.reauthorized", subscription_id=subscription_id)
    return "reauthorized"
