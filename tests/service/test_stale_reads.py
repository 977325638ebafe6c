"""A run that read a user before a change writes its findings after a faster run that read
after it (a slow recompute message; a nightly page, which evaluates against the memberships
read when its run started): the older read must not resolve or overwrite what the newer one
recorded, in the findings ledger or in the data-loss guard's capability record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from shared.ports.messages import RecomputeUsers
from shared.ports.tables import ConcurrencyConflict, EntityStore
from shared.service.dataloss import CAPABILITIES_PK
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.stores import FindingsLedger
from shared.service.stores.findings_ledger import WRITE_ATTEMPTS
from shared.service.users import RecomputeOutcome, recompute_users
from tests.adapters.test_findings_ledger_contract import WrittenFirstEachTime
from tests.alerts.test_immediate import MAILBOX_GROUP, sales, with_mailbox_group
from tests.alerts.world import alert_world, prime
from tests.service.world import World

pytestmark = pytest.mark.anyio


def world_on(new_store: Callable[[], EntityStore]) -> World:
    """One Sales user holding a mailbox from Mailbox_Sales, alerts on; the findings and the
    capability records (`servicestate`) in the store under test (the fake, then Azurite)."""
    world = alert_world(with_mailbox_group(1))
    world.svc.tables = replace(world.svc.tables, findings=new_store(), servicestate=new_store())
    prime(world)
    return world


class PausedAfterRead:
    """The slow worker's Graph: its first `member_of` answers as read, then waits for
    `go` before handing the answer back (the worker read the user, then was slow)."""

    def __init__(self, directory: Any) -> None:
        self._directory = directory
        self.read, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        answer: dict[str, list[str]] = await self._directory.member_of(user_ids)
        if not self.read.is_set():
            self.read.set()
            await self.go.wait()
        return answer


def recompute(svc: Any, user: str, run_id: str) -> Any:
    return recompute_users(
        svc, RecomputeUsers(user_ids=(user,), reason=run_id, correlation_id=run_id)
    )


def data_loss_rows(world: World, user: str) -> list[Any]:
    """The user's open DataLossRisk rows."""
    rows = FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])
    return [row for row in rows if row.partition_key == user]


def capability_record(world: World, user: str) -> str:
    stored = world.svc.tables.servicestate.get(CAPABILITIES_PK, user)
    assert stored is not None
    return str(stored.fields["json"])


async def test_a_recompute_that_read_before_a_loss_does_not_resolve_the_loss_read_after_it(
    new_store: Callable[[], EntityStore],
) -> None:
    """The slow recompute read the user in Mailbox_Sales; the user left; a faster recompute
    read that and opened DataLossRisk (the alert names the deadline: 30 days from the loss).
    The slow one then wrote its older view: it resolved the finding and wrote the capability
    record back to 'held', so the next recompute found the loss anew, later, with a later
    deadline and a second alert."""
    world = world_on(new_store)
    [user] = sales(world)
    await recompute(world.svc, user, "known")  # what the user holds is recorded
    slow_graph = PausedAfterRead(world.directory)
    slow_svc = replace(world.svc, directory=slow_graph)

    async def faster_after_the_change() -> RecomputeOutcome:
        await slow_graph.read.wait()
        world.directory.remove_member(MAILBOX_GROUP, user)
        world.clock.advance(60)
        outcome = await recompute(world.svc, user, "fast")
        slow_graph.go.set()
        return outcome

    slow, fast = await asyncio.gather(recompute(slow_svc, user, "slow"), faster_after_the_change())

    assert "DataLossRisk" in [f.code for f in fast.new_findings]
    assert slow.resolved == []
    [row] = data_loss_rows(world, user)
    assert row.fields["runId"] == "fast"
    assert '"lost":{}' not in capability_record(world, user)
    world.clock.advance(60)
    again = await recompute(world.svc, user, "next")
    assert again.new_findings == []
    assert data_loss_rows(world, user)[0].fields["firstSeen"] == row.fields["firstSeen"]


class CrashAfterGroups:
    """The nightly run dies once its groups are read (and kept for the resume)."""

    def __init__(self) -> None:
        self.armed = True

    def reached(self, name: str) -> None:
        if self.armed and name == "reconcile.after_groups":
            self.armed = False
            raise RuntimeError("host stopped")


async def test_a_nightly_page_of_memberships_read_before_a_loss_does_not_resolve_it(
    new_store: Callable[[], EntityStore],
) -> None:
    """The nightly run read the memberships (the user in Mailbox_Sales) and stopped; the user
    left and a recompute opened DataLossRisk; the resumed run's page, evaluated against the
    memberships it read first, resolved it."""
    world = world_on(new_store)
    [user] = sales(world)
    await recompute(world.svc, user, "known")
    world.svc.crash_points = CrashAfterGroups()
    with pytest.raises(RuntimeError, match="host stopped"):
        await reconcile_nightly(world.svc, world.svc.blobs)
    world.clock.advance(60)
    world.directory.remove_member(MAILBOX_GROUP, user)
    fast = await recompute(world.svc, user, "fast")
    assert "DataLossRisk" in [f.code for f in fast.new_findings]
    world.clock.advance(60)

    await reconcile_nightly(world.svc, world.svc.blobs)

    [row] = data_loss_rows(world, user)
    assert row.fields["runId"] == "fast"
    assert '"lost":{}' not in capability_record(world, user)


def another_instance_writes(world: World, user: str) -> None:
    """Another instance writes the user's DataLossRisk row (sees it, as a recompute of the
    same read would), over its ETag."""
    [row] = data_loss_rows(world, user)
    fields = row.fields | {"lastSeen": world.clock.now()}
    world.svc.tables.findings.update(row.partition_key, row.row_key, fields, etag=row.etag)


def digest_marks(world: World, user: str) -> None:
    [row] = data_loss_rows(world, user)
    fields = row.fields | {"alertedIn": "digest-1"}
    world.svc.tables.findings.update(row.partition_key, row.row_key, fields, etag=row.etag)


async def test_a_recompute_still_contended_at_its_last_write_is_handed_back_and_redone(
    new_store: Callable[[], EntityStore],
) -> None:
    """Every write of the user's DataLossRisk row meets a row written meanwhile, the last time
    by the digest marking it mailed: the recompute raises (the host redelivers the message)
    instead of writing over the mark, and the redelivery records the user, the mark kept."""
    world = world_on(new_store)
    [user] = sales(world)
    await recompute(world.svc, user, "known")
    world.directory.remove_member(MAILBOX_GROUP, user)
    world.clock.advance(60)
    await recompute(world.svc, user, "loss")
    world.clock.advance(60)
    others: list[Callable[[], object]] = [
        *(partial(another_instance_writes, world, user) for _ in range(WRITE_ATTEMPTS - 1)),
        partial(digest_marks, world, user),
    ]
    [loss] = data_loss_rows(world, user)
    contended = WrittenFirstEachTime(world.svc.tables.findings, others, loss.row_key)
    tables = replace(world.svc.tables, findings=contended)

    with pytest.raises(ConcurrencyConflict):
        await recompute(replace(world.svc, tables=tables), user, "contended")

    assert others == []
    [row] = data_loss_rows(world, user)
    assert (row.fields["runId"], row.fields["alertedIn"]) == ("loss", "digest-1")
    world.clock.advance(30)
    redelivered = await recompute(world.svc, user, "contended")
    assert redelivered.new_findings == []
    [row] = data_loss_rows(world, user)
    assert (row.fields["runId"], row.fields["alertedIn"]) == ("contended", "digest-1")
