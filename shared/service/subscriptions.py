"""The `/groups` change-notification subscription: exactly one, always more than 48 h from expiry.

Graph keeps a group subscription at most 41,760 minutes (just under 29 days) and deletes it
when it expires; notifications then stop silently. The keeper (a timer) makes sure exactly one
subscription with our URLs exists and renews it when it expires within 48 hours. Lifecycle
notifications are handled here too: `reauthorizationRequired` reauthorizes, or renews when
expiry is near (a renewal reauthorizes too; Graph asks for never both within 10 minutes), and
replaces a subscription gone meanwhile; `subscriptionRemoved` re-creates it; `missed` queues a
resync only (Graph sends these two for other resources; handled should they ever come).
Whenever the subscription had to be (re-)created, changes may have been missed meanwhile, so
a `DeltaSweep` is queued. Our subscription ids are kept in the `subscriptions` table, where
the webhook checks that a notification is for one of ours.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from shared.ports.directory import DirectoryError, Subscription, SubscriptionRequest
from shared.ports.messages import DeltaSweep, LifecycleEvent, new_correlation_id
from shared.ports.tables import AlreadyExists, ConcurrencyConflict, EntityStore
from shared.service.crashpoints import crash_point
from shared.service.services import Services
from shared.service.stores import ServiceState

log = structlog.get_logger(__name__)

RESOURCE = "/groups"
CHANGE_TYPE = "updated,deleted"
MAX_LIFETIME = timedelta(minutes=41_760)
LIFETIME_MARGIN = timedelta(minutes=60)
RENEW_WITHIN = timedelta(hours=48)
UPDATE_GAP = timedelta(minutes=10)
"""Graph: never a reauthorize and an update (PATCH) of one subscription within 10 minutes."""
SUBSCRIPTION_PK = "subscription"
REAUTHORIZATION = "reauthorizationRequired"


@dataclass(frozen=True, slots=True)
class KeeperOutcome:
    action: str
    """created | renewed | kept | recreated | busy (another run holds the keeper's lease)"""
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


def _remember(
    svc: Services, subscription: Subscription, retiring: frozenset[str] = frozenset()
) -> None:
    """Record `subscription` as ours and forget the others, except `retiring`: replaced ones
    still to be deleted in Graph, which only our table still knows as ours (an old URL).
    Graph has just handed it over live: that is the dead-man switch's latest look too, so an
    earlier "gone" verdict (preflight reads it) does not outlive the subscription made anew."""
    table = svc.tables.subscriptions
    for stale in our_subscription_ids(table) - {subscription.id} - retiring:
        table.delete(SUBSCRIPTION_PK, stale)
    table.upsert(
        SUBSCRIPTION_PK,
        subscription.id,
        {"resource": subscription.resource, "expiration": subscription.expiration},
    )
    ServiceState(svc.tables.servicestate).put(
        SUBSCRIPTION_LIVE, {"live": True, "reason": "", "checkedAt": svc.now()}
    )


def _ours(svc: Services, subscriptions: list[Subscription]) -> list[Subscription]:
    """Our /groups subscriptions to both URLs the settings name now."""
    url, lifecycle_url = svc.settings.notification_url, svc.settings.lifecycle_notification_url
    return [
        s
        for s in subscriptions
        if s.resource.strip("/").lower() == "groups"
        and s.notification_url == url
        and s.lifecycle_notification_url == lifecycle_url
    ]


def _outdated(svc: Services, subscriptions: list[Subscription]) -> list[Subscription]:
    """Ours (recorded, or to our notification URL) but to a URL no longer configured: a
    redeploy or rotated function keys. Graph cannot change a lifecycle URL, so these are
    replaced, and deleted once the new one exists."""
    current = {s.id for s in _ours(svc, subscriptions)}
    recorded = our_subscription_ids(svc.tables.subscriptions)
    return [
        s
        for s in subscriptions
        if s.id not in current
        and s.resource.strip("/").lower() == "groups"
        and (s.id in recorded or s.notification_url == svc.settings.notification_url)
    ]


SWEEP_OWED = "sweep-owed"
"""servicestate: a DeltaSweep is owed (a subscription is being, or was, (re-)created). Written
before the create and cleared after the sweep is sent, so a crash in between is finished by
the next keeper run instead of leaving the gap without a sweep."""
SUBSCRIPTION_LIVE = "subscription-live"
"""servicestate: the dead-man switch's last look at our subscription in Graph."""


def _owe_sweep(svc: Services, reason: str) -> None:
    ServiceState(svc.tables.servicestate).put(SWEEP_OWED, {"reason": reason, "at": svc.now()})


def _send_owed_sweep(svc: Services) -> bool:
    state = ServiceState(svc.tables.servicestate)
    owed = state.get(SWEEP_OWED)
    if owed is None:
        return False
    sweep = DeltaSweep(reason=str(owed.fields.get("reason")), correlation_id=new_correlation_id())
    svc.send(sweep)
    crash_point(svc, "keeper.after_sweep_sent")
    with contextlib.suppress(ConcurrencyConflict, LookupError):
        svc.tables.servicestate.delete(ServiceState.META_PK, SWEEP_OWED, etag=owed.etag)
    log.info("subscription.sweep_sent", reason=sweep.reason, correlation_id=sweep.correlation_id)
    return True


async def _create(svc: Services, reason: str, replaced: list[Subscription]) -> Subscription:
    """Create ours, record it, delete the `replaced` ones, then send the owed sweep. The
    replaced stay recorded until they are deleted in Graph: a run that died in between finds
    them again by the table (by its URL alone an old one is not ours any more)."""
    _owe_sweep(svc, reason)
    crash_point(svc, "keeper.after_sweep_owed")
    request = SubscriptionRequest(
        resource=RESOURCE,
        change_type=CHANGE_TYPE,
        notification_url=svc.settings.notification_url,
        lifecycle_notification_url=svc.settings.lifecycle_notification_url,
        client_state=svc.settings.client_state,
        expiration=_expiry(svc.now()),
    )
    subscription = await svc.directory.create_subscription(request)
    crash_point(svc, "keeper.after_create")
    _remember(svc, subscription, retiring=frozenset(old.id for old in replaced))
    crash_point(svc, "keeper.after_remember")
    for old in replaced:
        await svc.directory.delete_subscription(old.id)
    crash_point(svc, "keeper.after_replaced_deleted")
    _send_owed_sweep(svc)
    _remember(svc, subscription)
    log.info("subscription.created", subscription_id=subscription.id, reason=reason)
    return subscription


KEEPER_LEASE = "subscription-keeper"
"""servicestate: a run has been changing our subscriptions since `at`. Two at once (the timer
and a lifecycle event, or two instances) each found none, and each created and recorded one."""
KEEPER_LEASE_TIME = timedelta(minutes=5)
"""A lease older than this belongs to a run that died: the next run takes it over."""


class KeeperBusy(Exception):
    """Another run holds the keeper's lease: the lifecycle event waits (`on_lifecycle_event`
    sends it again, for after `LIFECYCLE_RETRY_SECONDS`)."""


LIFECYCLE_RETRY_SECONDS = 60
"""How long a lifecycle event that met the keeper's lease waits before it is tried again."""


def _take_lease(svc: Services) -> str | None:
    """The keeper's lease (its ETag), or None while another run holds a live one."""
    state, now = ServiceState(svc.tables.servicestate), svc.now()
    held = state.get(KEEPER_LEASE)
    at = held.fields.get("at") if held else None
    if held is not None and isinstance(at, datetime) and now - at < KEEPER_LEASE_TIME:
        return None
    try:
        if held is None:
            return state.insert(KEEPER_LEASE, {"at": now})
        return state.put(KEEPER_LEASE, {"at": now}, held.etag)
    except (AlreadyExists, ConcurrencyConflict):
        return None


async def keep_subscription(svc: Services) -> KeeperOutcome:
    """Exactly one live subscription of ours, one run at a time (`KEEPER_LEASE`: a run that
    meets another's does nothing, "busy"); see `_keep`."""
    lease = _take_lease(svc)
    if lease is None:
        log.info("subscription.keeper_busy")
        return KeeperOutcome("busy", "", "")
    try:
        crash_point(svc, "keeper.after_lease")
        return await _keep(svc)
    finally:
        with contextlib.suppress(ConcurrencyConflict):
            svc.tables.servicestate.delete(ServiceState.META_PK, KEEPER_LEASE, etag=lease)


async def _keep_now(svc: Services) -> KeeperOutcome:
    """`keep_subscription` for a lifecycle event: `KeeperBusy` when another run holds the lease
    (it may have listed our subscriptions before this event's change)."""
    outcome = await keep_subscription(svc)
    if outcome.action == "busy":
        raise KeeperBusy("another run is changing the subscriptions; Graph sends the event again")
    return outcome


async def _keep(svc: Services) -> KeeperOutcome:
    """Resumable: a sweep owed by an earlier run that died after creating the subscription is
    sent first. A subscription created by a request whose answer was lost shows up here as
    ours and is kept (extras are deleted)."""
    _send_owed_sweep(svc)
    found = await svc.directory.subscriptions()
    current, now = _ours(svc, found), svc.now()
    mine = sorted((s for s in current if _parse(s.expiration) > now), key=lambda s: s.expiration)
    # One that expired and is still listed cannot be renewed: replaced, like an outdated one.
    outdated = [*(s for s in current if s not in mine), *_outdated(svc, found)]
    if not mine:
        reason = "subscription was missing: changes may have been missed"
        if outdated:
            reason = "subscription expired or its URLs changed: replaced"
        created = await _create(svc, reason, outdated)
        return KeeperOutcome("created", created.id, created.expiration, len(outdated))
    keep, extras = mine[-1], [*mine[:-1], *outdated]
    for extra in extras:
        await svc.directory.delete_subscription(extra.id)
    action = "kept"
    if _parse(keep.expiration) - svc.now() < RENEW_WITHIN:
        try:
            keep = await svc.directory.renew_subscription(keep.id, _expiry(svc.now()))
        except DirectoryError as error:
            if error.status != 404:
                raise
            # Deleted (removed, or expired) between the list and the renewal: replaced now,
            # with its catch-up sweep, not by the next run hours later.
            log.warning("subscription.gone_at_renewal", subscription_id=keep.id)
            reason = "subscription was gone at its renewal: changes may have been missed"
            created = await _create(svc, reason, [])
            return KeeperOutcome("recreated", created.id, created.expiration, len(extras))
        action = "renewed"
        log.info("subscription.renewed", subscription_id=keep.id, expiration=keep.expiration)
        crash_point(svc, "keeper.after_renew")
    _remember(svc, keep)
    return KeeperOutcome(action, keep.id, keep.expiration, len(extras))


async def check_subscription_live(svc: Services) -> bool | None:
    """The dead-man switch asks Graph, not only our table: is one of our recorded
    subscriptions still there (`GET /subscriptions/{id}`) and unexpired? The verdict is
    stored for the poison watch; None (and the old verdict kept) when Graph cannot say."""
    ids = sorted(our_subscription_ids(svc.tables.subscriptions))
    now = svc.now()
    live = False
    reason = "no subscription is recorded"
    try:
        for subscription_id in ids:
            found = await svc.directory.subscription(subscription_id)
            if found is None:
                reason = f"subscription {subscription_id} no longer exists in Graph"
            elif _parse(found.expiration) <= now:
                reason = f"subscription {subscription_id} expired at {found.expiration}"
            else:
                live, reason = True, ""
                break
    except DirectoryError as exc:
        log.warning("subscription.check_unavailable", error=exc.loggable)
        return None
    ServiceState(svc.tables.servicestate).put(
        SUBSCRIPTION_LIVE, {"live": live, "reason": reason, "checkedAt": now}
    )
    if not live:
        log.error("subscription.not_live", reason=reason)
    return live


def subscription_dead_reason(svc: Services) -> str | None:
    """Why no subscription is live, from the table and Graph's last answer; None if live."""
    if not our_subscription_ids(svc.tables.subscriptions):
        return "No change-notification subscription is recorded"
    verdict = ServiceState(svc.tables.servicestate).get(SUBSCRIPTION_LIVE)
    if verdict is not None and verdict.fields.get("live") is False:
        return f"Graph says {verdict.fields.get('reason')}"
    return None


async def on_lifecycle_event(svc: Services, msg: LifecycleEvent) -> str:
    """The `subscription-lifecycle` worker: act on one event the webhook vetted and queued.
    Delivered again (a redelivery, Graph's resend queued twice), it ends as once: each branch
    of `handle_lifecycle_event` leaves one live subscription. Meeting another run's lease, the
    event is sent again for later (a dequeue attempt is not spent on the wait)."""
    try:
        return await handle_lifecycle_event(svc, msg.subscription_id, msg.event)
    except KeeperBusy:
        svc.send(msg, delay_seconds=LIFECYCLE_RETRY_SECONDS)
        log.info("subscription.lifecycle_deferred", subscription_id=msg.subscription_id,
                 lifecycle_event=msg.event, retry_after=LIFECYCLE_RETRY_SECONDS)  # fmt: skip
        return "deferred"


async def handle_lifecycle_event(svc: Services, subscription_id: str, event: str) -> str:
    """Act on one vetted lifecycle event; returns what was done. Safe to run again (Graph
    redelivers a batch it got no 2xx for): each branch ends in one live subscription.

    As https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
    prescribes: `reauthorizationRequired` reauthorizes, or renews near expiry (a subscription
    that no longer exists is replaced, not an error); `subscriptionRemoved` re-creates;
    `missed` only resyncs (a delta sweep), the subscription itself is alive and stays as it
    is."""
    if event == REAUTHORIZATION:
        return await _reauthorize(svc, subscription_id)
    if event == "subscriptionRemoved":
        await svc.directory.delete_subscription(subscription_id)  # gone already: fine
        outcome = await _keep_now(svc)
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
    """Reauthorize (POST …/reauthorize, the expiry kept) or, within `RENEW_WITHIN` of expiry,
    renew (PATCH expirationDateTime, which reauthorizes too): never both within `UPDATE_GAP`,
    as Graph asks (it can leave the subscription inconsistent), so nothing right after a
    renewal (the keeper's, or this event's before Graph delivered it again)."""
    try:
        found = await svc.directory.subscription(subscription_id)
        if found is not None and _parse(found.expiration) <= svc.now():
            found = None  # expired, as good as gone (Graph deletes it)
        if found is not None and _parse(found.expiration) > _parse(_expiry(svc.now() - UPDATE_GAP)):
            # Renewed (or created) by us within UPDATE_GAP, which reauthorized it; a POST now
            # would follow that PATCH too closely. Graph sends the event again if still due.
            log.info("subscription.reauthorize_skipped", subscription_id=subscription_id,
                     expiration=found.expiration)  # fmt: skip
            return "renewed moments ago"
        if found is not None and _parse(found.expiration) - svc.now() < RENEW_WITHIN:
            renewed = await svc.directory.renew_subscription(subscription_id, _expiry(svc.now()))
            _remember(svc, renewed)
            log.info("subscription.renewed", subscription_id=subscription_id,
                     expiration=renewed.expiration, reason=REAUTHORIZATION)  # fmt: skip
            return "renewed (reauthorized)"
        if found is not None:
            await svc.directory.reauthorize_subscription(subscription_id)
            log.info("subscription.reauthorized", subscription_id=subscription_id)
            return "reauthorized"
    except DirectoryError as error:
        if error.status != 404:
            raise
    # Expired or deleted meanwhile: nothing to reauthorize, so make sure one exists again.
    outcome = await _keep_now(svc)
    log.info("subscription.reauthorize_gone", subscription_id=subscription_id,
             action=outcome.action, current=outcome.subscription_id)  # fmt: skip
    return f"gone; {outcome.action} {outcome.subscription_id}"
