"""Users waiting on a group stuck processing: recomputed less and less often, not every 15 min."""

from __future__ import annotations

import pytest

from shared.ports.messages import RecomputeUsers
from shared.ports.queues import RECOMPUTE_USERS, REPROCESS_USER
from shared.service.users import recompute_users
from tests.demo_tenant import ADELE, E3_BASE
from tests.service.test_recompute import learned, recompute
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio


async def test_a_user_waiting_on_a_stuck_group_backs_off_to_hours_between_recomputes() -> None:
    """Each recompute said "still processing" and asked for the next one 15 minutes later:
    96 recomputes a day for every member waiting, for as long as the group stayed stuck."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "ProcessingInProgress"}
    world = await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))
    start = world.clock.now()

    waits = []  # minutes from each recompute to the delayed one it asked for
    while (world.clock.now() - start).total_seconds() < 24 * 3600:
        outcome = await recompute_users(world.svc, recompute(ADELE))
        assert outcome.retry_later == [ADELE]
        minutes = 0
        while not (retries := world.messages(RECOMPUTE_USERS)):
            world.clock.advance(60)
            minutes += 1
        [retry] = retries
        assert isinstance(retry, RecomputeUsers)
        assert retry.user_ids == (ADELE,)
        waits.append(minutes)

    assert world.messages(REPROCESS_USER) == []
    assert waits[0] == 16  # 15 min, rounded up to the next whole minute
    assert max(waits) <= 4 * 60 + 1
    assert waits == sorted(waits)
    assert len(waits) < 16
