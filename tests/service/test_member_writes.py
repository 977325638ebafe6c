"""Group member rows are written in table transactions, and a crash between two of them, then
the host's redelivery, ends as a run without the crash.

A first sweep of a 100k-user tenant (about 300k memberships) wrote one row per table call:
25-50 minutes, past Flex Consumption's 30-minute function timeout, so the sweep was retried
and poisoned. `GroupMembers.apply` now writes each group's rows 100 to a transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.messages import DeltaSweep, GroupsChanged
from shared.ports.tables import Entity, EntityValue, Upserts, batch_transactions
from shared.service.groups import handle_group_changes
from shared.service.stores import GroupMembers
from tests.demo_tenant import ENTERPRISEPACK
from tests.reliability.harness import SimulatedCrash
from tests.service.world import World, build_world, demo_snapshot, recomputed_users

pytestmark = pytest.mark.anyio

BIG = str(uuid.uuid5(uuid.NAMESPACE_URL, "member-writes/big"))
USERS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"member-writes/u{i}")) for i in range(250)]


class TransactionTable:
    """The `groupmembers` table (a fake of our port over `InMemoryTable`) that sends each
    transaction of a batch as Azure would, one request each, and counts them; with
    `crash_after`, the worker dies after that many transactions of `BIG`."""

    def __init__(self, inner: InMemoryTable, crash_after: int | None = None) -> None:
        self._inner = inner
        self.name = inner.name
        self.requests: dict[str, int] = {}
        self.crash_after = crash_after

    def _sent(self, pk: str) -> None:
        if (
            pk == BIG
            and self.crash_after is not None
            and self.requests.get(pk, 0) >= self.crash_after
        ):
            self.crash_after = None
            raise SimulatedCrash("between two transactions")
        self.requests[pk] = self.requests.get(pk, 0) + 1

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        for operations in batch_transactions(pk, upserts, deletes):
            self._sent(pk)
            self._inner.write_batch(
                pk,
                {op.row_key: op.fields for op in operations if op.fields is not None},
                [op.row_key for op in operations if op.fields is None],
            )

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._sent(pk)
        return self._inner.upsert(pk, rk, fields)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._sent(pk)
        self._inner.delete(pk, rk, etag=etag)

    def get(self, pk: str, rk: str) -> Entity | None:
        return self._inner.get(pk, rk)

    def query(self, pk: str) -> list[Entity]:
        return self._inner.query(pk)

    def query_all(self) -> Iterator[Entity]:
        return self._inner.query_all()


def big_group_world(crash_after: int | None = None) -> tuple[World, TransactionTable]:
    """The demo tenant plus a licensed E3 group of 250 users; member rows counted per request."""
    snapshot: dict[str, Any] = demo_snapshot()
    template = snapshot["users"][0]
    for i, user_id in enumerate(USERS):
        snapshot["users"].append(
            {**template, "id": user_id, "userPrincipalName": f"bulk{i}@contoso.com"}
        )
    snapshot["groups"].append(
        {
            "id": BIG,
            "displayName": "Licensing_E3_Bulk",
            "assignedLicenses": [{"skuId": ENTERPRISEPACK, "disabledPlans": []}],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [{"@odata.type": "#microsoft.graph.user", "id": u} for u in USERS],
        }
    )
    world = build_world(snapshot)
    table = TransactionTable(InMemoryTable("groupmembers"), crash_after)
    world.svc.tables = replace(world.svc.tables, groupmembers=table)  # type: ignore[arg-type]
    return world, table


def sweep() -> DeltaSweep:
    return DeltaSweep(reason="test sweep", correlation_id="test-sweep")


async def test_a_first_sweep_writes_a_groups_member_rows_100_to_a_request() -> None:
    world, table = big_group_world()

    await handle_group_changes(world.svc, sweep())

    assert GroupMembers(table).members(BIG) == set(USERS)
    assert table.requests[BIG] == 3  # was 250, one per member row


async def test_a_crash_between_two_transactions_of_a_first_sweep_then_redelivery_converges() -> (
    None
):
    world, table = big_group_world(crash_after=1)

    with pytest.raises(SimulatedCrash):
        await handle_group_changes(world.svc, sweep())
    assert len(GroupMembers(table).members(BIG)) == 100  # one transaction went through
    await handle_group_changes(world.svc, sweep())  # the host redelivers it

    assert GroupMembers(table).members(BIG) == set(USERS)
    assert set(USERS) <= recomputed_users(world)  # sent before the rows were saved


async def test_a_crash_between_two_transactions_of_leavers_then_redelivery_converges() -> None:
    """An incremental round deletes its leavers without reading the stored rows: the replay
    deletes rows the first transaction already removed, which must not fail the batch."""
    world, table = big_group_world()
    await handle_group_changes(world.svc, sweep())
    recomputed_users(world)
    leavers = USERS[:150]
    for user_id in leavers:
        world.directory.remove_member(BIG, user_id)
    table.crash_after = table.requests[BIG] + 1
    msg = GroupsChanged(group_ids=(BIG,), correlation_id="c", received_at="2026-11-24T09:00:00Z")

    with pytest.raises(SimulatedCrash):
        await handle_group_changes(world.svc, msg)
    await handle_group_changes(world.svc, msg)  # the host redelivers it

    assert GroupMembers(table).members(BIG) == set(USERS[150:])
    assert set(leavers) <= recomputed_users(world)
