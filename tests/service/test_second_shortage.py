"""A second seat shortage (or processing run) after a reprocess is recorded, so its end allows
the next reprocess: the ledger's observation of a cause seen before is renewed, not skipped."""

from __future__ import annotations

import pytest

from shared.ports.queues import RECOMPUTE_USERS
from shared.service.users import recompute_users
from tests.demo_tenant import ADELE, E3_BASE, IRVIN
from tests.service.test_recompute import free_ems_seats, learned, recompute, reprocess_messages
from tests.service.world import World

pytestmark = pytest.mark.anyio


async def test_seats_freed_after_a_second_shortage_reprocess_the_user_again(
    act_world: World,
) -> None:
    world = await learned(act_world)
    first_short = await recompute_users(world.svc, recompute(IRVIN))
    assert first_short.alerts == [IRVIN]

    free_ems_seats(world, 1)
    world.clock.advance(2 * 3600)  # the cached SKUs are refreshed
    freed = await recompute_users(world.svc, recompute(IRVIN))
    assert freed.queued == [IRVIN]
    [called] = await world.run_reprocess()
    assert called.status == "called"

    # Someone else took the seat before Entra assigned it: Irvin is short again.
    free_ems_seats(world, 0)
    world.clock.advance(2 * 3600)
    second_short = await recompute_users(world.svc, recompute(IRVIN))
    assert second_short.alerts == [IRVIN]

    # Seats are bought: the second shortage is over, so one more reprocess may succeed.
    free_ems_seats(world, 3)
    world.clock.advance(2 * 3600)
    freed_again = await recompute_users(world.svc, recompute(IRVIN))

    assert freed_again.queued == [IRVIN]
    assert [m.user_id for m in reprocess_messages(world)] == [IRVIN]


def set_processing(world: World, state: str) -> None:
    world.directory.groups[E3_BASE]["licenseProcessingState"] = {"state": state}


async def test_a_second_processing_run_of_the_group_allows_one_more_reprocess(
    act_world: World,
) -> None:
    """Adele's pending E3 was reprocessed after one processing run of E3 Base; the group was
    processed again (a membership change) and her assignment is still missing: one completed
    run, one attempt. The second run's 'in progress' was never recorded (the first run's row
    existed), and the policy answered 'already reprocessed' for good."""
    world = await learned(act_world)
    for _ in range(2):
        set_processing(world, "ProcessingInProgress")
        waiting = await recompute_users(world.svc, recompute(ADELE))
        assert waiting.retry_later == [ADELE]
        world.messages(RECOMPUTE_USERS)
        world.clock.advance(3600)

        set_processing(world, "ProcessingComplete")
        done = await recompute_users(world.svc, recompute(ADELE))
        assert done.queued == [ADELE]
        [called] = await world.run_reprocess()
        assert called.status == "called"
        world.clock.advance(3600)

    assert world.directory.reprocessed == [ADELE, ADELE]
