"""A delayed retry handled before its due time by an instance whose clock runs behind the one
that sent it: it waits for its due time again instead of ending the user's retry chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.ports.messages import RecomputeUsers, decode_message, encode_message
from shared.ports.queues import RECOMPUTE_USERS
from shared.service.stores.pending_retries import early_by
from shared.service.users import recompute_users
from tests.demo_tenant import ADELE, E3_BASE
from tests.service.test_recompute import learned, recompute
from tests.service.world import World, build_world, demo_snapshot

pytestmark = pytest.mark.anyio

BEHIND = 3 * 60
"""How far the handling instance's clock is behind the sender's, in seconds."""


async def waiting_for_e3_base() -> World:
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    return await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))


async def first_retry(world: World) -> RecomputeUsers:
    """Adele's first delayed retry, received when it becomes visible."""
    assert (await recompute_users(world.svc, recompute(ADELE))).retry_later == [ADELE]
    world.clock.advance(timedelta(minutes=16).total_seconds())
    [retry] = world.messages_of(RECOMPUTE_USERS, RecomputeUsers)
    return retry


async def test_a_retry_handled_early_by_a_clock_behind_waits_for_its_due_time_and_goes_on() -> None:
    world = await waiting_for_e3_base()
    retry = await first_retry(world)
    reads = world.directory.requests["users_by_id"]

    world.clock.advance(-BEHIND)  # the instance handling it reads an earlier time
    outcome = await recompute_users(world.svc, retry)
    world.clock.advance(BEHIND)

    assert outcome.evaluated == []  # not read early
    assert world.directory.requests["users_by_id"] == reads
    world.clock.advance(BEHIND)
    [again] = world.messages_of(RECOMPUTE_USERS, RecomputeUsers)
    assert again.user_ids == (ADELE,)
    assert (await recompute_users(world.svc, again)).retry_later == [ADELE]
    world.clock.advance(timedelta(hours=1).total_seconds())
    [nxt] = world.messages_of(RECOMPUTE_USERS, RecomputeUsers)  # the chain goes on
    assert nxt.user_ids == (ADELE,)


async def test_a_retry_on_time_within_a_minute_is_handled_at_once() -> None:
    world = await waiting_for_e3_base()
    retry = await first_retry(world)

    world.clock.advance(-50)
    outcome = await recompute_users(world.svc, retry)

    assert outcome.retry_later == [ADELE]


def test_a_retry_message_carries_its_due_time_and_older_ones_without_it_still_decode() -> None:
    msg = RecomputeUsers(
        user_ids=(ADELE,), reason="retry", correlation_id="c", due_at="2026-11-24T09:16:00Z"
    )
    assert decode_message(encode_message(msg)) == msg
    old = {"type": "RecomputeUsers", "userIds": [ADELE], "reason": "r", "correlationId": "c"}
    decoded = decode_message(json.dumps(old))
    assert isinstance(decoded, RecomputeUsers)
    assert decoded.due_at is None


def test_how_early_a_retry_is_waits_only_for_a_believable_due_time() -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    assert early_by(None, now) == 0  # not a retry
    assert early_by("2026-11-24T09:00:30Z", now) == 0  # on time, within a minute
    assert early_by("2026-11-24T09:02:00.5Z", now) == 121
    assert early_by("2026-11-25T10:00:00+01:00", now) == 24 * 3600
    assert early_by("2026-11-25T11:00:00Z", now) == 0  # 26 h ahead: a clock far off
