"""A queue worker that Graph throttles for longer than the host's retries take: the work waits
out Retry-After on its queue instead of burning `maxDequeueCount` attempts into `-poison`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from azure.functions.queue import QueueMessage

from shared.bootstrap import use
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import JSON, DirectoryError
from shared.ports.messages import GroupsChanged, Message, RecomputeUsers, encode_message
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS
from tests.demo_tenant import E3_BASE, IRVIN
from tests.functions.test_handlers import call
from tests.service.world import START, World, build_world

THROTTLED_FOR = timedelta(minutes=10)
RETRY_AFTER = 120.0
VISIBILITY_TIMEOUT = 30  # host.json extensions.queues.visibilityTimeout
MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount


class ThrottledReads(FakeDirectory):
    """The fake Graph, but every read a recompute or a group change starts with answers 429
    (Retry-After 120 s) for the first ten minutes, as Graph does under a sync burst."""

    status, code = 429, "TooManyRequests"

    def _throttle(self, method: str) -> None:
        if self._now() < START + THROTTLED_FOR:
            self.requests[method] += 1
            raise DirectoryError(self.status, self.code, "slow down", retry_after=RETRY_AFTER)


class UnavailableReads(ThrottledReads):
    """Graph overloaded: 503 with a Retry-After (what batch items still unavailable after
    their re-sends raise): Graph names when to come back, as for a 429."""

    status, code = 503, "serviceNotAvailable"

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        self._throttle("users_by_id")
        return await super().users_by_id(user_ids)

    async def group_configs(self, group_ids: Sequence[str]) -> Any:
        self._throttle("group_configs")
        return await super().group_configs(group_ids)

    async def licensed_group_configs(self) -> Any:
        self._throttle("licensed_group_configs")
        return await super().licensed_group_configs()


@pytest.fixture
def throttled() -> Iterator[World]:
    world = build_world(fake=ThrottledReads)
    use(world.svc)
    yield world
    use(None)


def run_as_the_host(world: World, function: str, queue_name: str, minutes: int) -> list[str]:
    """Play the Functions host on one queue for `minutes`: each visible message is run; a run
    that raises is retried after the visibility timeout, and after `MAX_DEQUEUE_COUNT` failed
    runs the message goes to -poison. Returns what was poisoned."""
    queue = world.queue(queue_name)
    poisoned: list[str] = []
    for _ in range(minutes * 60 // VISIBILITY_TIMEOUT):
        while received := queue.receive(1, visibility_timeout=VISIBILITY_TIMEOUT):
            [msg] = received
            trigger = QueueMessage(
                id=msg.id, body=msg.text.encode(), dequeue_count=msg.dequeue_count
            )
            try:
                call(function, trigger)
            except DirectoryError:
                if msg.dequeue_count >= MAX_DEQUEUE_COUNT:
                    queue.delete(msg)
                    poisoned.append(msg.text)
                continue
            queue.delete(msg)
        world.clock.advance(VISIBILITY_TIMEOUT)
    return poisoned


def enqueue(world: World, msg: Message) -> None:
    world.queue(RECOMPUTE_USERS if isinstance(msg, RecomputeUsers) else GROUPS_CHANGED).put_raw(  # type: ignore[attr-defined]
        encode_message(msg)
    )


def test_a_recompute_throttled_past_the_hosts_retries_waits_on_its_queue(throttled: World) -> None:
    enqueue(throttled, RecomputeUsers(user_ids=(IRVIN,), reason="t", correlation_id="c"))

    poisoned = run_as_the_host(throttled, "recompute_users", RECOMPUTE_USERS, minutes=15)

    assert poisoned == []
    assert (
        throttled.directory.requests["users_by_id"]
        <= THROTTLED_FOR.total_seconds() // RETRY_AFTER + 2
    )
    codes = [e.fields["code"] for e in throttled.svc.tables.findings.query(IRVIN)]
    assert codes  # recomputed once the throttling ended: Irvin's CountViolation is recorded


def test_a_group_change_throttled_past_the_hosts_retries_waits_on_its_queue(
    throttled: World,
) -> None:
    enqueue(
        throttled,
        GroupsChanged(group_ids=(E3_BASE,), correlation_id="c", received_at="2026-11-24T09:00:00Z"),
    )

    poisoned = run_as_the_host(throttled, "group_changes", GROUPS_CHANGED, minutes=15)

    assert poisoned == []
    assert throttled.messages(RECOMPUTE_USERS)  # the change reached its users


def test_a_recompute_graph_answers_503_with_retry_after_waits_on_its_queue() -> None:
    world = build_world(fake=UnavailableReads)
    use(world.svc)
    try:
        enqueue(world, RecomputeUsers(user_ids=(IRVIN,), reason="t", correlation_id="c"))

        poisoned = run_as_the_host(world, "recompute_users", RECOMPUTE_USERS, minutes=15)
    finally:
        use(None)

    assert poisoned == []
    assert (
        world.directory.requests["users_by_id"] <= THROTTLED_FOR.total_seconds() // RETRY_AFTER + 2
    )
    assert [e.fields["code"] for e in world.svc.tables.findings.query(IRVIN)]
