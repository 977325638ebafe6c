"""Seats promised to queued CountViolation reprocesses count tenant-wide, not per message.

The errors re-check sends its users in recompute messages of 100. Each message counted a
SKU's free seats as purchased - used - the seats promised to ITS OWN users' queued
reprocesses, so messages decided one after another each handed out the same free seats:
with 3 free seats and 300 users in CountViolation over 3 messages, 9 reprocesses were
queued, 6 of them bound to fail again with CountViolation and spend the daily cap.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.ports.messages import RecomputeUsers, ReprocessUser
from shared.ports.queues import RECOMPUTE_USERS, REPROCESS_USER
from shared.ports.tables import Entity, EntityStore
from shared.service.users import recompute_users
from tests.demo_tenant import IRVIN, JONI
from tests.reconcile.conftest import Nightly, SmallPages
from tests.reconcile.test_many_groups_in_error import _id, many_groups_in_error
from tests.service.test_recompute import free_ems_seats, learned
from tests.service.world import World, build_world

pytestmark = pytest.mark.anyio

USERS = 300
FREE = 3


async def over_seat_world(**settings: Any) -> World:
    """300 users in CountViolation for EMS, one per licensing group, and 3 free EMS seats."""
    world = await learned(build_world(many_groups_in_error(USERS), **settings))
    free_ems_seats(world, FREE)
    return world


def batches() -> list[RecomputeUsers]:
    users = [_id("user", n) for n in range(USERS)]
    return list(RecomputeUsers.batches(users, reason="errors re-check", correlation_id="recheck"))


def queued_users(world: World) -> list[str]:
    """The users whose reprocess would take an EMS seat (the demo's Irvin and Joni too)."""
    over_seat = {_id("user", n) for n in range(USERS)} | {IRVIN, JONI}
    queued = world.messages_of(REPROCESS_USER, ReprocessUser)
    return [m.user_id for m in queued if m.user_id in over_seat]


async def test_recompute_messages_one_after_another_promise_each_free_seat_once() -> None:
    world = await over_seat_world(LICENSE_GUARD_MODE="act")
    assert len(batches()) == 3

    for msg in batches():
        await recompute_users(world.svc, msg)

    assert len(queued_users(world)) == FREE


async def test_a_seat_promised_days_ago_to_a_message_that_never_went_out_is_free_again() -> None:
    """A reprocess recorded as queued whose send never happened (its recompute message was
    poisoned) holds its seat for the messages of other users only until `STALE_IN_FLIGHT`:
    the tenant-wide count must not leak a seat for good."""
    world = await over_seat_world(LICENSE_GUARD_MODE="act")
    first, second, _ = batches()
    await recompute_users(world.svc, first)
    assert len(queued_users(world)) == FREE
    for user_id in {e.partition_key for e in world.svc.tables.reprocessledger.query_all()}:
        for entity in world.svc.tables.reprocessledger.query(user_id):
            fields = dict(entity.fields) | {"sent": False}
            world.svc.tables.reprocessledger.upsert(user_id, entity.row_key, fields)

    world.clock.advance(timedelta(hours=1).total_seconds())
    await recompute_users(world.svc, second)
    assert queued_users(world) == []

    world.clock.advance(timedelta(days=3).total_seconds())
    await recompute_users(world.svc, second)
    assert len(queued_users(world)) == FREE


async def test_a_nightly_scan_counts_seats_promised_before_it_to_users_on_later_pages() -> None:
    """The scan's pages saw only their own users' queued reprocesses: 3 promised by the
    errors re-check to users on a later page left the first page 3 seats that were not free."""
    nightly = Nightly(await over_seat_world(fake=SmallPages, LICENSE_GUARD_MODE="act"))
    await nightly.run()  # the baseline: nothing queued
    nightly.world.clock.advance(timedelta(days=1).total_seconds())
    await recompute_users(nightly.world.svc, batches()[-1])
    assert len(queued_users(nightly.world)) == FREE

    result = await nightly.run()

    assert result.status == "done"
    assert queued_users(nightly.world) == []


class ReadTogether:
    """The reprocess ledger as recompute messages decided at once see it: each thread's first
    tenant-wide read waits until every message has read, so all decide before any writes."""

    def __init__(self, table: EntityStore, all_read: threading.Barrier) -> None:
        self._table, self._all_read = table, all_read
        self._waited = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query_all(self) -> Iterator[Entity]:
        rows = list(self._table.query_all())
        if not getattr(self._waited, "done", False):
            self._waited.done = True
            self._all_read.wait(timeout=60)
        return iter(rows)


def test_recompute_messages_decided_at_once_promise_each_free_seat_once() -> None:
    """The host runs up to 16 recompute messages at once (host.json batchSize) and the errors
    re-check sends all its messages together: each read the ledger before the others wrote,
    so each handed out the same 3 free seats (9 reprocesses for 3 seats)."""
    world = asyncio.run(over_seat_world(LICENSE_GUARD_MODE="act"))
    messages = batches()
    table = ReadTogether(world.svc.tables.reprocessledger, threading.Barrier(len(messages)))
    world.svc.tables = replace(world.svc.tables, reprocessledger=table)

    with ThreadPoolExecutor(len(messages)) as pool:
        done = [pool.submit(asyncio.run, recompute_users(world.svc, m)) for m in messages]
        for future in done:
            future.result(timeout=120)

    # Never more than the seats. Under contention all may give theirs back (each saw the
    # others' rows: about one run in six here); they are decided again after the backoff
    # (the next test), so `0 <` would assert a race's outcome.
    assert len(queued_users(world)) <= FREE


class CountedScans:
    """A table (the reprocess ledger, the findings), counting its full scans (`query_all`)."""

    def __init__(self, table: EntityStore) -> None:
        self._table, self.scans = table, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query_all(self) -> Iterator[Entity]:
        self.scans += 1
        return self._table.query_all()


async def test_a_recompute_message_scans_the_ledger_once_for_all_the_seats_it_hands_out() -> None:
    """Each CountViolation reprocess re-read the seats in flight tenant-wide before it was
    sent: a message handing out 20 seats scanned the whole ledger 21 times (once to decide,
    once per reprocess). The re-check is once per decided batch: 2 scans."""
    world = await over_seat_world(LICENSE_GUARD_MODE="act")
    free_ems_seats(world, 20)
    table = CountedScans(world.svc.tables.reprocessledger)
    world.svc.tables = replace(world.svc.tables, reprocessledger=table)

    await recompute_users(world.svc, batches()[0])

    assert len(queued_users(world)) == 20
    assert table.scans == 2


def test_a_user_handed_back_at_the_seat_re_check_is_decided_again_after_the_backoff() -> None:
    """Messages decided at once each promise the same free seats; the re-check hands the
    surplus back. Those users got no retry (unlike the users the decision itself left
    waiting for a seat): they waited for the next errors re-check or the nightly scan."""
    world = asyncio.run(over_seat_world(LICENSE_GUARD_MODE="act"))
    messages = batches()
    table = ReadTogether(world.svc.tables.reprocessledger, threading.Barrier(len(messages)))
    world.svc.tables = replace(world.svc.tables, reprocessledger=table)
    with ThreadPoolExecutor(len(messages)) as pool:
        for future in [pool.submit(asyncio.run, recompute_users(world.svc, m)) for m in messages]:
            future.result(timeout=120)
    kept = set(queued_users(world))

    world.clock.advance(timedelta(minutes=16).total_seconds())
    retried = {
        user_id
        for msg in world.messages_of(RECOMPUTE_USERS, RecomputeUsers)
        for user_id in msg.user_ids
    }

    assert len(kept) <= FREE  # all may give theirs back under contention (see above)
    assert retried | kept == {_id("user", n) for n in range(USERS)}


class CheckFailsAfterOthersDecided:
    """The reprocess ledger as a message sees it that read the seats in flight, then waited
    while `meanwhile` (another message) decided, queued and sent, then recorded its own rows
    and failed reading the seats again for its re-check (a storage error, or a worker killed
    at that moment): its rows are left recorded, unsent and unchecked."""

    def __init__(self, table: EntityStore, meanwhile: Callable[[], None]) -> None:
        self._table, self._meanwhile, self.scans = table, meanwhile, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query_all(self) -> Iterator[Entity]:
        self.scans += 1
        if self.scans > 1:
            raise ConnectionError("the table service went away before the seat re-check")
        rows = list(self._table.query_all())
        self._meanwhile()
        return iter(rows)


async def test_a_redelivery_checks_the_seats_of_the_reprocesses_left_unsent() -> None:
    """A message that recorded its reprocesses and died before re-checking the seats left
    them unsent; its redelivery sent them unchecked (`send_unsent`), on top of the seats
    another message kept meanwhile: 6 reprocesses for 3 free seats."""
    world = await over_seat_world(LICENSE_GUARD_MODE="act")
    first, second, _ = batches()

    def second_message_meanwhile() -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, recompute_users(world.svc, second)).result(timeout=60)

    dying = replace(world.svc)
    dying.tables = replace(
        world.svc.tables,
        reprocessledger=CheckFailsAfterOthersDecided(
            world.svc.tables.reprocessledger, second_message_meanwhile
        ),
    )
    with pytest.raises(ConnectionError):
        await recompute_users(dying, first)
    await recompute_users(world.svc, first)  # the redelivery

    assert len(queued_users(world)) == FREE


async def test_a_seat_a_reprocess_just_took_is_not_free_again_from_the_sku_cache() -> None:
    """The SKU counts come from a cache up to an hour old: a CountViolation reprocess done
    since no longer counted as in flight, and the cached consumed units did not show it yet,
    so its seat looked free again (3 reprocesses done, 3 more queued for the same 3 seats)."""
    world = await over_seat_world(LICENSE_GUARD_MODE="act")
    first, second, _ = batches()
    await recompute_users(world.svc, first)
    outcomes = await world.run_reprocess()
    assert [o.status for o in outcomes].count("called") == FREE

    world.clock.advance(timedelta(minutes=5).total_seconds())
    await recompute_users(world.svc, second)

    assert queued_users(world) == []
