"""Users handed back at the seat re-check must not meet again when they are retried.

Recompute messages decided at the same moment may each promise the same free seats; the
re-check after writing hands the surplus back, and under contention every message may hand
back all of its own (each sees the others' rows): a designed outcome, never more reprocesses
than seats. Their users were retried by one delayed recompute per message, all after the same
backoff: the retries arrived together, were decided together and could all hand back again, so
a burst of CountViolation users with few free seats took several 15-minute rounds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.ports.messages import RecomputeUsers
from shared.ports.queues import RECOMPUTE_USERS
from shared.ports.tables import Entity, EntityStore
from shared.service.users import recompute_users
from tests.reconcile.test_many_groups_in_error import _id
from tests.service.test_seats_promised_tenant_wide import (
    FREE,
    USERS,
    batches,
    over_seat_world,
    queued_users,
)
from tests.service.world import World


class DecidedTogether:
    """The reprocess ledger as messages delivered at the same moment see it at their worst:
    every message reads for its decision before any writes, and reads for its seat re-check
    after all have written and before any hands a seat back (each sees all the others' rows)."""

    def __init__(self, table: EntityStore, parties: int) -> None:
        self._table = table
        self._decided, self._written, self._checked = (threading.Barrier(parties) for _ in range(3))
        self._done = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query_all(self) -> Iterator[Entity]:
        scan = getattr(self._done, "scans", 0)
        self._done.scans = scan + 1
        if scan == 1:  # the seat re-check
            self._written.wait(timeout=60)
        rows = list(self._table.query_all())
        if scan < 2:
            (self._decided if scan == 0 else self._checked).wait(timeout=60)
        return iter(rows)


def decide(world: World, messages: list[RecomputeUsers]) -> None:
    """Run recompute messages delivered at the same moment: one alone, several together."""
    if len(messages) == 1:
        asyncio.run(recompute_users(world.svc, messages[0]))
        return
    ledger = world.svc.tables.reprocessledger
    together = replace(world.svc)
    together.tables = replace(
        world.svc.tables, reprocessledger=DecidedTogether(ledger, len(messages))
    )
    with ThreadPoolExecutor(len(messages)) as pool:
        running = [pool.submit(asyncio.run, recompute_users(together, m)) for m in messages]
        for future in running:
            future.result(timeout=120)


def deliver(world: World, seconds: int) -> tuple[list[str], set[str]]:
    """Let `seconds` pass one by one, deciding the recompute messages each second makes
    visible as the host would (those due in the same second together): the users whose
    reprocess was kept, and every user decided."""
    kept: list[str] = []
    decided: set[str] = set()
    for _ in range(seconds):
        world.clock.advance(1)
        due = world.messages_of(RECOMPUTE_USERS, RecomputeUsers)
        if due:
            decide(world, due)
            kept += queued_users(world)
            decided.update(u for m in due for u in m.user_ids)
    return kept, decided


def test_users_handed_back_under_contention_take_the_seats_at_their_retry() -> None:
    world = asyncio.run(over_seat_world(LICENSE_GUARD_MODE="act"))
    decide(world, batches())
    assert queued_users(world) == []  # every message handed its seats back

    kept, decided = deliver(world, int(timedelta(minutes=17).total_seconds()))

    assert len(kept) == FREE  # they used to meet again and hand back again, round after round
    assert decided == {_id("user", n) for n in range(USERS)}  # nobody dropped
