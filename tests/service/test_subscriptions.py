"""The subscription keeper and lifecycle events: exactly one /groups subscription, kept alive."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from shared.core.graph_values import parse_graph_time
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DirectoryError, Subscription, SubscriptionRequest
from shared.service.intake.notifications import Intake, accept_change_notifications
from shared.service.stores import ServiceState
from shared.service.subscriptions import (
    KEEPER_LEASE,
    KEEPER_LEASE_TIME,
    LIFECYCLE_RETRY_SECONDS,
    MAX_LIFETIME,
    RENEW_WITHIN,
    SUBSCRIPTION_LIVE,
    KeeperOutcome,
    check_subscription_live,
    keep_subscription,
    our_subscription_ids,
    subscription_dead_reason,
)
from tests.reliability.harness import CrashRecorder, SimulatedCrash
from tests.service.world import (
    CLIENT_STATE,
    LIFECYCLE_URL,
    NOTIFICATION_URL,
    World,
    body,
    build_world,
    lifecycle,
    sweeps,
)

pytestmark = pytest.mark.anyio


async def existing(
    world: World,
    *,
    expires_in: timedelta,
    url: str = NOTIFICATION_URL,
    lifecycle_url: str = LIFECYCLE_URL,
) -> str:
    """A subscription Graph already holds (created before this keeper run)."""
    moment = world.clock.now() + expires_in
    sub = await world.directory.create_subscription(
        SubscriptionRequest(
            resource="/groups",
            change_type="updated,deleted",
            notification_url=url,
            lifecycle_notification_url=lifecycle_url,
            client_state=CLIENT_STATE,
            expiration=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )
    world.directory.requests.clear()
    return sub.id


async def ours(world: World, *, expires_in: timedelta) -> str:
    """An existing subscription that our table records as ours, as the keeper left it."""
    sub_id = await existing(world, expires_in=expires_in)
    world.subscribe(sub_id)
    return sub_id


async def lifecycle_event(world: World, event: str, sub_id: str) -> Intake:
    """Graph posts one lifecycle event about `sub_id` to our lifecycle endpoint, which queues
    it; the `subscription-lifecycle` worker then acts on it."""
    intake = accept_change_notifications(world.svc, body(lifecycle(event, subscriptionId=sub_id)))
    await world.run_lifecycle()
    return intake


async def graph_subscriptions(world: World) -> list[Subscription]:
    subs = await world.directory.subscriptions()
    world.directory.requests["subscriptions"] -= 1
    return subs


def recorded(world: World) -> set[str]:
    return our_subscription_ids(world.svc.tables.subscriptions)


async def test_a_missing_subscription_is_created_recorded_and_followed_by_a_sweep(
    world: World,
) -> None:
    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "created"
    assert sub.id == outcome.subscription_id
    assert sub.notification_url == NOTIFICATION_URL
    assert sub.lifecycle_notification_url == LIFECYCLE_URL
    assert sub.resource == "/groups"
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_a_subscription_far_from_expiry_is_kept_as_it_is(world: World) -> None:
    sub_id = await existing(world, expires_in=timedelta(days=10))

    outcome = await keep_subscription(world.svc)

    assert outcome.action == "kept"
    assert world.directory.requests["renew_subscription"] == 0
    assert recorded(world) == {sub_id}
    assert sweeps(world) == []


async def test_a_subscription_expiring_within_48_hours_is_renewed_to_nearly_the_maximum(
    world: World,
) -> None:
    sub_id = await existing(world, expires_in=RENEW_WITHIN - timedelta(minutes=1))

    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "renewed"
    assert sub.id == sub_id
    lifetime = datetime.fromisoformat(sub.expiration) - world.clock.now()
    assert MAX_LIFETIME - timedelta(hours=2) < lifetime <= MAX_LIFETIME
    assert world.directory.requests["create_subscription"] == 0
    assert sweeps(world) == []  # a renewal misses nothing


class DeletedBeforeRenewal(FakeDirectory):
    """Graph deletes the subscription (removed, or past its expiry) between the keeper's list
    and its renewal: the PATCH answers 404."""

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        await self.delete_subscription(subscription_id)
        return await super().renew_subscription(subscription_id, expiration)


async def test_a_subscription_gone_at_its_renewal_is_recreated_in_the_same_run() -> None:
    """The renewal's 404 failed the keeper run: no subscription until the next run, hours
    later, and nothing swept for the gap."""
    world = build_world(fake=DeletedBeforeRenewal)
    gone = await ours(world, expires_in=RENEW_WITHIN - timedelta(minutes=1))

    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "recreated"
    assert (outcome.subscription_id, sub.notification_url) == (sub.id, NOTIFICATION_URL)
    assert sub.id != gone
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1
    assert (await keep_subscription(world.svc)).action == "kept"


class ListsExpiredSubscriptions(FakeDirectory):
    """Graph deletes a subscription that expired, yet GET /subscriptions has been seen to
    list it still (microsoftgraph/msgraph-sdk-javascript#906); renewing it fails."""

    def _drop_expired(self) -> None:
        """Listed still, as that GET did (the fake, like Graph, would have deleted it)."""

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        found = await self.subscription(subscription_id)
        if found is not None and parse_graph_time(found.expiration) <= self._now():
            raise DirectoryError(404, "ResourceNotFound", "The subscription has expired.")
        return await super().renew_subscription(subscription_id, expiration)


async def test_an_expired_subscription_still_listed_is_replaced_not_renewed() -> None:
    """The app was stopped (or the keeper failing) past the expiry: the keeper tried to renew
    the expired one, failed, and failed the same way on every run after: no subscription."""
    world = build_world(fake=ListsExpiredSubscriptions)
    expired = await existing(world, expires_in=timedelta(hours=1))
    world.subscribe(expired)
    world.clock.advance(timedelta(hours=2).total_seconds())

    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "created"
    assert sub.id != expired
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_duplicate_subscriptions_are_reduced_to_the_one_expiring_last(
    world: World,
) -> None:
    older = await existing(world, expires_in=timedelta(days=5))
    newer = await existing(world, expires_in=timedelta(days=20))
    foreign = await existing(world, expires_in=timedelta(days=5), url="https://other.example/x")

    outcome = await keep_subscription(world.svc)

    remaining = {s.id for s in await graph_subscriptions(world)}
    assert outcome.removed_extra == 1
    assert remaining == {newer, foreign}  # someone else's subscription is not ours to delete
    assert older not in remaining
    assert recorded(world) == {newer}


async def test_a_subscription_whose_lifecycle_url_is_no_longer_ours_is_replaced(
    world: World,
) -> None:
    """Graph cannot change a subscription's lifecycleNotificationUrl (delete and re-create,
    https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events). After the
    lifecycle function's key was rotated the keeper kept renewing the old one, whose
    lifecycle events (reauthorizationRequired) went to a URL that no longer opens."""
    old = await existing(
        world, expires_in=timedelta(days=10), lifecycle_url=f"{LIFECYCLE_URL}?code=old-key"
    )
    world.subscribe(old)

    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "created"
    assert sub.id != old
    assert sub.lifecycle_notification_url == LIFECYCLE_URL
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_after_the_notification_url_changed_our_old_subscription_is_deleted(
    world: World,
) -> None:
    """A redeploy to another host, or rotated function keys: the keeper creates a
    subscription for the new URL. The old one, recorded as ours, used to stay in Graph for up
    to 29 days, posting every change to the old URL as well (rejected there as 'not ours',
    or refused for its old key) and holding one of the 100 subscriptions per app and tenant."""
    old_url = "https://guard-old.example.net/api/graph/notifications"
    old = await existing(world, expires_in=timedelta(days=10), url=old_url)
    world.subscribe(old)

    outcome = await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert outcome.action == "created"
    assert sub.notification_url == NOTIFICATION_URL
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


@pytest.mark.parametrize(
    "point",
    [
        "keeper.after_create",
        "keeper.after_remember",
        "keeper.after_replaced_deleted",
        "keeper.after_sweep_sent",
    ],
)
async def test_a_keeper_that_died_before_deleting_the_old_subscription_deletes_it_next_run(
    world: World, point: str
) -> None:
    """The replacement for an old URL was created and recorded, then the worker died before
    the old one was deleted. Recording the new one had dropped the old one from our table,
    and the old URL is no longer ours by its URL: the next run no longer knew it, so it stayed
    in Graph up to 29 days, posting every change to the old URL."""
    old_url = "https://guard-old.example.net/api/graph/notifications"
    old = await existing(world, expires_in=timedelta(days=10), url=old_url)
    world.subscribe(old)
    world.svc.crash_points = CrashRecorder([], crash_at=point)
    with pytest.raises(SimulatedCrash):
        await keep_subscription(world.svc)

    await keep_subscription(world.svc)

    [sub] = await graph_subscriptions(world)
    assert sub.notification_url == NOTIFICATION_URL
    assert recorded(world) == {sub.id}
    assert sweeps(world)  # sent once; twice after dying between the send and its record


async def test_a_subscription_the_keeper_made_anew_is_not_reported_dead_any_more(
    world: World,
) -> None:
    """The dead-man switch found ours gone; the keeper then made a new one. Its verdict,
    "Graph says subscription … no longer exists", stood until the poison watch's next look
    (30 min), and preflight failed on it though the new subscription was live."""
    gone = await ours(world, expires_in=timedelta(days=10))
    await world.directory.delete_subscription(gone)
    assert await check_subscription_live(world.svc) is False
    assert subscription_dead_reason(world.svc) is not None

    outcome = await keep_subscription(world.svc)

    assert outcome.action == "created"
    assert subscription_dead_reason(world.svc) is None
    verdict = ServiceState(world.svc.tables.servicestate).get(SUBSCRIPTION_LIVE)
    assert verdict is not None
    assert verdict.fields["live"] is True
    assert verdict.fields["checkedAt"] == world.clock.now()


async def test_reauthorization_far_from_expiry_only_reauthorizes(world: World) -> None:
    sub_id = await ours(world, expires_in=timedelta(days=10))

    await lifecycle_event(world, "reauthorizationRequired", sub_id)

    assert world.directory.requests["reauthorize_subscription"] == 1
    assert world.directory.requests["renew_subscription"] == 0


async def test_reauthorization_near_expiry_renews_instead(world: World) -> None:
    """Graph: never a reauthorize (POST …/reauthorize) and an update (PATCH) of one
    subscription within 10 minutes, "subscription state inconsistencies"; a PATCH of
    expirationDateTime reauthorizes and renews in one request
    (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events). Near
    expiry both were sent, one right after the other."""
    sub_id = await ours(world, expires_in=timedelta(hours=3))

    await lifecycle_event(world, "reauthorizationRequired", sub_id)

    assert world.directory.requests["reauthorize_subscription"] == 0
    assert world.directory.requests["renew_subscription"] == 1
    [sub] = await graph_subscriptions(world)
    assert sub.expiration > (world.clock.now() + RENEW_WITHIN).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("renewed_by", ["keeper", "event"])
async def test_reauthorization_just_after_a_renewal_sends_nothing(
    world: World, renewed_by: str
) -> None:
    """A renewal (PATCH) reauthorizes too. A reauthorizationRequired that comes minutes after
    one, the keeper's or the event's own redelivered (Graph resends what took over 3 s), must
    not be followed by a POST …/reauthorize: Graph asks for never both within 10 minutes."""
    sub_id = await ours(world, expires_in=timedelta(hours=3))
    if renewed_by == "keeper":
        assert (await keep_subscription(world.svc)).action == "renewed"
    else:
        await lifecycle_event(world, "reauthorizationRequired", sub_id)
    world.clock.advance(4 * 60)

    await lifecycle_event(world, "reauthorizationRequired", sub_id)

    assert world.directory.requests["renew_subscription"] == 1
    assert world.directory.requests["reauthorize_subscription"] == 0
    world.clock.advance(10 * 60)  # later on, a new event is acted on again
    await lifecycle_event(world, "reauthorizationRequired", sub_id)
    assert world.directory.requests["reauthorize_subscription"] == 1


async def test_one_event_repeated_in_a_batch_is_acted_on_once(world: World) -> None:
    """Graph batches lifecycle notifications, and resends: the same event twice in one POST
    called Graph twice (or queued two sweeps), inside the 3 s the answer must come in."""
    sub_id = await ours(world, expires_in=timedelta(days=10))
    reauthorize = lifecycle("reauthorizationRequired", subscriptionId=sub_id)
    missed = lifecycle("missed", subscriptionId=sub_id)

    accept_change_notifications(world.svc, body(reauthorize, missed, reauthorize, missed))
    await world.run_lifecycle()

    assert world.directory.requests["reauthorize_subscription"] == 1
    assert len(sweeps(world)) == 1


async def test_reauthorization_of_a_subscription_past_its_expiry_replaces_it(
    world: World,
) -> None:
    """Still handed back though expired (Graph deletes it at expiry): renewing it was tried,
    and Graph answers such a renewal 404. It is replaced, and the gap swept."""
    sub_id = await ours(world, expires_in=timedelta(hours=1))
    world.clock.advance(2 * 3600)

    await lifecycle_event(world, "reauthorizationRequired", sub_id)

    assert world.directory.requests["renew_subscription"] == 0
    [sub] = [s for s in await graph_subscriptions(world) if s.id != sub_id]
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_a_removed_subscription_is_recreated_and_followed_by_a_sweep(world: World) -> None:
    sub_id = await ours(world, expires_in=timedelta(days=10))

    await lifecycle_event(world, "subscriptionRemoved", sub_id)

    [sub] = await graph_subscriptions(world)
    assert sub.id != sub_id
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_a_removed_event_delivered_twice_leaves_one_subscription(world: World) -> None:
    """Graph redelivers a batch it got no 2xx for: the second run must not add another."""
    sub_id = await ours(world, expires_in=timedelta(days=10))
    removed = body(lifecycle("subscriptionRemoved", subscriptionId=sub_id))

    accept_change_notifications(world.svc, removed)
    await world.run_lifecycle()
    accept_change_notifications(world.svc, removed)
    await world.run_lifecycle()

    [sub] = await graph_subscriptions(world)
    assert recorded(world) == {sub.id}
    assert world.directory.requests["create_subscription"] == 1


class SubscriptionsOverHttp(FakeDirectory):
    """Graph's subscription calls take their time, as over HTTP (a create waits for Graph's
    validation handshake with our endpoint): another run goes on meanwhile."""

    async def subscriptions(self) -> list[Subscription]:
        await asyncio.sleep(0)
        return await super().subscriptions()

    async def create_subscription(self, request: SubscriptionRequest) -> Subscription:
        for _ in range(10):
            await asyncio.sleep(0)
        return await super().create_subscription(request)

    async def delete_subscription(self, subscription_id: str) -> None:
        await asyncio.sleep(0)
        await super().delete_subscription(subscription_id)


async def test_the_keeper_and_a_removed_event_at_once_leave_one_subscription() -> None:
    """The keeper timer and Graph's subscriptionRemoved (or two instances) ran together: each
    listed no subscription of ours, and each created and recorded one. Graph kept both until
    the next keeper run, hours later: every change came twice, and the one no longer in our
    table was refused at the webhook as not ours. One run at a time changes them now; the
    event that met the other's lease is sent again for later, and then finds the new one."""
    world = build_world(fake=SubscriptionsOverHttp)
    sub_id = await ours(world, expires_in=timedelta(days=10))
    await world.directory.delete_subscription(sub_id)  # Graph removed it

    accept_change_notifications(
        world.svc, body(lifecycle("subscriptionRemoved", subscriptionId=sub_id))
    )
    kept, event = await asyncio.gather(keep_subscription(world.svc), world.run_lifecycle())
    assert isinstance(kept, KeeperOutcome)
    assert kept.action == "created"
    assert event == ["deferred"]  # sent again, for after LIFECYCLE_RETRY_SECONDS
    assert await world.run_lifecycle() == []  # not before
    world.clock.advance(LIFECYCLE_RETRY_SECONDS)
    assert await world.run_lifecycle() == [f"kept {kept.subscription_id}"]

    [sub] = await graph_subscriptions(world)
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1


async def test_a_keeper_lease_left_by_a_run_that_died_is_taken_over() -> None:
    world = build_world()
    ServiceState(world.svc.tables.servicestate).put(KEEPER_LEASE, {"at": world.clock.now()})

    assert (await keep_subscription(world.svc)).action == "busy"
    world.clock.advance(KEEPER_LEASE_TIME.total_seconds())
    assert (await keep_subscription(world.svc)).action == "created"
    assert ServiceState(world.svc.tables.servicestate).get(KEEPER_LEASE) is None


async def test_missed_notifications_only_resync_and_keep_the_live_subscription(
    world: World,
) -> None:
    """`missed`: resynchronise with a delta query, the subscription itself is fine
    (https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events)."""
    sub_id = await ours(world, expires_in=timedelta(days=10))

    await lifecycle_event(world, "missed", sub_id)

    assert [s.id for s in await graph_subscriptions(world)] == [sub_id]
    assert recorded(world) == {sub_id}
    assert world.directory.requests["delete_subscription"] == 0
    assert world.directory.requests["create_subscription"] == 0
    [sweep] = sweeps(world)
    assert "missed" in sweep.reason


async def test_reauthorization_of_a_subscription_that_is_gone_creates_a_new_one(
    world: World,
) -> None:
    """It expired or was deleted in Graph; our table still names it. Reauthorizing answers
    404, which used to fail the request (500) and make Graph retry the batch for hours."""
    gone = await ours(world, expires_in=timedelta(days=10))
    await world.directory.delete_subscription(gone)

    intake = await lifecycle_event(world, "reauthorizationRequired", gone)

    assert intake.vetted.lifecycle == ((gone, "reauthorizationRequired"),)
    [sub] = await graph_subscriptions(world)
    assert sub.id != gone
    assert recorded(world) == {sub.id}
    assert len(sweeps(world)) == 1  # changes may have been missed while there was none


async def test_reauthorization_when_another_of_ours_exists_creates_none(world: World) -> None:
    gone = await ours(world, expires_in=timedelta(days=10))
    await world.directory.delete_subscription(gone)
    live = await existing(world, expires_in=timedelta(days=20))

    await lifecycle_event(world, "reauthorizationRequired", gone)

    assert [s.id for s in await graph_subscriptions(world)] == [live]
    assert world.directory.requests["create_subscription"] == 0
    assert recorded(world) == {live}


async def test_an_unknown_lifecycle_event_is_ignored(world: World) -> None:
    sub_id = await ours(world, expires_in=timedelta(days=10))

    await lifecycle_event(world, "somethingNew", sub_id)

    assert world.directory.request_count == 0
    assert sweeps(world) == []
    assert recorded(world) == {sub_id}


async def test_a_forged_lifecycle_event_is_not_acted_on(world: World) -> None:
    sub_id = await ours(world, expires_in=timedelta(days=10))

    accept_change_notifications(
        world.svc,
        body(
            lifecycle("subscriptionRemoved", subscriptionId=sub_id, clientState="forged-0123456789")
        ),
    )
    assert await world.run_lifecycle() == []

    assert world.directory.request_count == 0
    assert [s.id for s in await graph_subscriptions(world)] == [sub_id]
