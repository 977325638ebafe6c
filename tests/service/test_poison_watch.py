"""The poison watch reads every poisoned message, not only the 32 a peek shows."""

from __future__ import annotations

from shared.fakes.queues import InMemoryQueue
from shared.ports.queues import RECOMPUTE_USERS, poison_name
from shared.service.poison_watch import POISONED_MESSAGE, watch_poison
from shared.service.stores import FindingsLedger
from tests.service.world import World, build_world


def poisoned(world: World, n: int) -> InMemoryQueue:
    queue = world.queue(poison_name(RECOMPUTE_USERS))
    assert isinstance(queue, InMemoryQueue)
    for i in range(n):
        queue.put_raw(f"poisoned message {i}")
    return queue


def open_poison_findings(world: World) -> int:
    return len(FindingsLedger(world.svc.tables.findings).open_by_code([POISONED_MESSAGE]))


def test_forty_poisoned_messages_are_forty_findings() -> None:
    world = build_world()
    world.subscribe()
    queue = poisoned(world, 40)

    outcome = watch_poison(world.svc)

    assert len(outcome.new_findings) == 40
    assert {f.code for f in outcome.new_findings} == {POISONED_MESSAGE}
    assert open_poison_findings(world) == 40
    assert queue.approximate_count() == 40  # all kept for inspection
    assert len(queue.peek_raw(32)) == 32  # and still visible


def test_watching_again_reports_nothing_new_and_resolves_nothing() -> None:
    world = build_world()
    world.subscribe()
    poisoned(world, 40)

    watch_poison(world.svc)
    again = watch_poison(world.svc)

    assert again.new_findings == []
    assert open_poison_findings(world) == 40


def test_one_more_poisoned_message_is_one_more_finding() -> None:
    world = build_world()
    world.subscribe()
    queue = poisoned(world, 40)
    watch_poison(world.svc)

    queue.put_raw("poisoned message 40")
    outcome = watch_poison(world.svc)

    assert [f.code for f in outcome.new_findings] == [POISONED_MESSAGE]
    assert "poisoned message 40" in outcome.new_findings[0].message
    assert open_poison_findings(world) == 41
