"""A second seat shortage (or processing run) after a reprocess is recorded, so its end allows
the next reprocess: the ledger's observation of a cause seen before is renewed, not skipped."""

from __future__ import annotations

import pytest

from shared.service.users import recompute_users
from tests.demo_tenant import IRVIN
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
