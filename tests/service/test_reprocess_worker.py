"""The reprocess worker: one call per cause, braked tenant-wide, throttling turned into a delay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DirectoryError
from shared.ports.messages import DeltaSweep, RecomputeUsers, ReprocessUser
from shared.ports.queues import REPROCESS_USER
from shared.service.groups import handle_group_changes
from shared.service.reprocessing import reprocess_user
from shared.service.stores import CALLING, DONE, QUEUED
from shared.service.users import recompute_users
from tests.demo_tenant import DIEGO, EMS, IRVIN, JONI
from tests.service.test_recompute import learned, recompute
from tests.service.world import World, build_world

pytestmark = pytest.mark.anyio


class FailingOnce(FakeDirectory):
    """The fake Graph, but the first reprocess call fails with `failure` (a port-level fake)."""

    failure: ClassVar[DirectoryError]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed = False

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        if not self.failed:
            self.failed = True
            self.requests["reprocess_license_assignment"] += 1
            raise self.failure
        return await super().reprocess_license_assignment(user_id)


class Throttled(FailingOnce):
    failure = DirectoryError(429, "TooManyRequests", "slow down", retry_after=7)


class Unavailable(FailingOnce):
    failure = DirectoryError(503, "ServiceUnavailable", "try again")


async def queued_reprocesses(world: World, *user_ids: str) -> list[ReprocessUser]:
    """Run the pipeline up to `reprocess-user` for users with CountViolation (seats freed)."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages("recompute-users")
    [ems] = [s for s in world.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + len(user_ids)
    msg = RecomputeUsers(user_ids=user_ids, reason="test", correlation_id="recompute")
    await recompute_users(world.svc, msg)
    msgs = world.messages(REPROCESS_USER)
    assert all(isinstance(m, ReprocessUser) for m in msgs)
    assert len(msgs) == len(user_ids)
    return msgs  # type: ignore[return-value]


def statuses(world: World, user_id: str) -> list[object]:
    return [e.fields["status"] for e in world.svc.tables.reprocessledger.query(user_id)]


def visible_after(world: World, seconds: float) -> bool:
    """True when `reprocess-user` holds one message that shows up after exactly `seconds`."""
    queue = world.queue(REPROCESS_USER)
    world.clock.advance(seconds - 1)
    hidden = queue.peek_raw() == []
    world.clock.advance(1)
    return hidden and len(queue.peek_raw()) == 1


async def test_a_queued_reprocess_calls_graph_once(act_world: World) -> None:
    [msg] = await queued_reprocesses(act_world, IRVIN)

    outcome = await reprocess_user(act_world.svc, msg)

    assert outcome.status == "called"
    assert act_world.directory.reprocessed == [IRVIN]
    assert statuses(act_world, IRVIN) == [DONE]


async def test_a_duplicate_reprocess_message_does_not_call_twice(act_world: World) -> None:
    [msg] = await queued_reprocesses(act_world, IRVIN)

    await reprocess_user(act_world.svc, msg)
    duplicate = await reprocess_user(act_world.svc, msg)

    assert duplicate.status == "duplicate"
    assert act_world.directory.reprocessed == [IRVIN]


async def test_a_message_for_a_cause_being_called_right_now_waits_for_the_lease(
    act_world: World,
) -> None:
    """Not called twice at once, and not dropped either: it comes back when the lease ends."""
    [msg] = await queued_reprocesses(act_world, IRVIN)
    [entity] = act_world.svc.tables.reprocessledger.query(IRVIN)
    act_world.svc.tables.reprocessledger.upsert(
        IRVIN, entity.row_key, entity.fields | {"status": CALLING, "at": act_world.clock.now()}
    )

    outcome = await reprocess_user(act_world.svc, msg)

    assert outcome.status == "busy"
    assert outcome.delay_seconds == 600
    assert act_world.directory.reprocessed == []
    assert act_world.messages(REPROCESS_USER) == []  # invisible until the lease ends
    act_world.clock.advance(601)
    assert act_world.messages(REPROCESS_USER) == [msg]


async def test_a_reprocess_is_blocked_when_the_mode_is_observe_at_call_time(
    act_world: World,
) -> None:
    [msg] = await queued_reprocesses(act_world, IRVIN)
    act_world.with_settings(LICENSE_GUARD_MODE="observe")

    outcome = await reprocess_user(act_world.svc, msg)

    assert outcome.status == "blocked"
    assert act_world.directory.requests["reprocess_license_assignment"] == 0


async def test_a_blocked_reprocess_is_not_counted_as_an_attempt(act_world: World) -> None:
    [msg] = await queued_reprocesses(act_world, IRVIN)
    act_world.with_settings(LICENSE_GUARD_MODE="observe")
    await reprocess_user(act_world.svc, msg)

    act_world.with_settings(LICENSE_GUARD_MODE="act")
    again = await recompute_users(
        act_world.svc, RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="again")
    )

    assert again.queued == [IRVIN]
    [retry] = act_world.messages(REPROCESS_USER)
    assert isinstance(retry, ReprocessUser)
    assert (await reprocess_user(act_world.svc, retry)).status == "called"
    assert act_world.directory.reprocessed == [IRVIN]


async def test_the_brake_defers_calls_beyond_the_rate_per_minute() -> None:
    world = build_world(LICENSE_GUARD_MODE="act", REPROCESS_RATE_PER_MIN="1")
    first, second = await queued_reprocesses(world, IRVIN, JONI)

    called = await reprocess_user(world.svc, first)
    braked = await reprocess_user(world.svc, second)

    assert called.status == "called"
    assert braked.status == "braked"
    assert braked.delay_seconds == pytest.approx(60.0)
    assert world.directory.reprocessed == [first.user_id]
    assert statuses(world, second.user_id) == [QUEUED]

    assert visible_after(world, 60)
    [retry] = world.messages(REPROCESS_USER)
    assert isinstance(retry, ReprocessUser)
    assert (await reprocess_user(world.svc, retry)).status == "called"
    assert world.directory.reprocessed == [first.user_id, second.user_id]


async def test_the_brake_stops_at_the_daily_cap_until_the_next_utc_day() -> None:
    world = build_world(LICENSE_GUARD_MODE="act", REPROCESS_DAILY_CAP="1")
    first, second = await queued_reprocesses(world, IRVIN, JONI)

    await reprocess_user(world.svc, first)
    braked = await reprocess_user(world.svc, second)

    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    assert braked.status == "braked"
    assert braked.delay_seconds == (midnight - world.clock.now()).total_seconds()
    assert world.directory.reprocessed == [first.user_id]


async def test_a_429_re_enqueues_the_message_after_retry_after_without_raising() -> None:
    world = build_world(fake=Throttled, LICENSE_GUARD_MODE="act")
    [msg] = await queued_reprocesses(world, IRVIN)

    outcome = await reprocess_user(world.svc, msg)

    assert outcome.status == "throttled"
    assert outcome.delay_seconds == 7
    assert statuses(world, IRVIN) == [QUEUED]
    assert visible_after(world, 7)
    [retry] = world.messages(REPROCESS_USER)
    assert retry == msg
    assert (await reprocess_user(world.svc, retry)).status == "called"
    assert world.directory.reprocessed == [IRVIN]


async def test_another_transient_error_raises_and_releases_the_claim_for_the_retry() -> None:
    world = build_world(fake=Unavailable, LICENSE_GUARD_MODE="act")
    [msg] = await queued_reprocesses(world, IRVIN)

    with pytest.raises(DirectoryError):
        await reprocess_user(world.svc, msg)

    assert statuses(world, IRVIN) == [QUEUED]
    assert world.messages(REPROCESS_USER) == []  # the host redelivers the same message
    assert (await reprocess_user(world.svc, msg)).status == "called"
    assert world.directory.reprocessed == [IRVIN]


async def test_a_user_deleted_before_the_call_settles_as_gone(act_world: World) -> None:
    [msg] = await queued_reprocesses(act_world, IRVIN)
    del act_world.directory.users[IRVIN]

    outcome = await reprocess_user(act_world.svc, msg)

    assert outcome.status == "gone"
    assert act_world.directory.reprocessed == []


async def test_a_manual_reprocess_without_causes_calls_graph() -> None:
    world = build_world(LICENSE_GUARD_MODE="act")
    msg = ReprocessUser(user_id=DIEGO, causes=(), reason="asked by an admin", correlation_id="m")

    outcome = await reprocess_user(world.svc, msg)

    assert outcome.status == "called"
    assert world.directory.reprocessed == [DIEGO]


PRADEEP = "56e897a1-eec7-52ab-b03e-313c4c4ff925"  # ProhibitedInUsageLocationViolation (CU)


async def test_a_corrected_usage_location_blocked_at_call_time_is_reprocessed_later(
    act_world: World,
) -> None:
    """The admin corrected Pradeep's usage location and the reprocess was queued, then the kill
    switch held it at call time. Its cause went back to 'observed' with the new location, so
    the next decision read the location as seen unchanged ('correct the usage location ...
    (unchanged since ...)') and never reprocessed him once writes were allowed again."""
    await learned(act_world)
    first = await recompute_users(act_world.svc, recompute(PRADEEP))
    assert first.alerts == [PRADEEP]
    act_world.directory.set_user_state(PRADEEP, usageLocation="DE")
    act_world.clock.advance(600)
    fixed = await recompute_users(act_world.svc, recompute(PRADEEP))
    assert fixed.queued == [PRADEEP]
    [msg] = act_world.messages(REPROCESS_USER)
    assert isinstance(msg, ReprocessUser)

    act_world.with_settings(LICENSE_GUARD_MODE="act", WRITES_DISABLED="true")
    assert (await reprocess_user(act_world.svc, msg)).status == "blocked"
    act_world.with_settings(LICENSE_GUARD_MODE="act")
    act_world.clock.advance(600)
    again = await recompute_users(act_world.svc, recompute(PRADEEP))

    assert again.queued == [PRADEEP]
    [retry] = act_world.messages(REPROCESS_USER)
    assert isinstance(retry, ReprocessUser)
    assert (await reprocess_user(act_world.svc, retry)).status == "called"
    assert act_world.directory.reprocessed == [PRADEEP]
