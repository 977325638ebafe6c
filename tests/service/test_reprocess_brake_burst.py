"""A burst of reprocesses behind the brake: each waiting message comes back once, in turn.

The brake lets `REPROCESS_RATE_PER_MIN` calls a minute through. Told only "one call is free
in 6 s", every waiting message came back at the same moment: one went through and the rest
were sent again for the next free call, so N waiting messages ran about N²/2 times (1,000
queued reprocesses, the default daily cap, at 10 a minute: half a million runs, each a
dequeue, a send and the ledger's and the brake's reads, over 100 minutes).
"""

from __future__ import annotations

import pytest

from shared.ports.messages import ReprocessUser
from shared.ports.queues import REPROCESS_USER
from shared.service.reprocessing import reprocess_user
from tests.service.world import build_world

pytestmark = pytest.mark.anyio

RATE = 2
"""Calls a minute (and the bucket's burst)."""
USERS = 12


async def test_braked_reprocesses_each_come_back_about_once_and_keep_the_rate() -> None:
    world = build_world(LICENSE_GUARD_MODE="act", REPROCESS_RATE_PER_MIN=str(RATE))
    users = sorted(world.directory.users)[:USERS]
    for user_id in users:
        world.svc.send(
            ReprocessUser(user_id=user_id, causes=(), reason="admin", correlation_id="burst")
        )
    runs, called_at = 0, []
    while len(called_at) < USERS and world.clock.monotonic() < 3600:
        for msg in world.messages_of(REPROCESS_USER, ReprocessUser):
            runs += 1
            if (await reprocess_user(world.svc, msg)).status in {"called", "gone"}:
                called_at.append(world.clock.monotonic())
        world.clock.advance(1)

    assert len(called_at) == USERS
    assert runs <= 2 * USERS  # each braked message sent again about once, not once per call
    # the brake still holds: after the burst, one call per 60 / RATE seconds
    assert called_at[-1] >= (USERS - RATE) * 60 / RATE
