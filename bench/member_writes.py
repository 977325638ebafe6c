"""Benchmark the group member rows a sweep writes: one table call per row against transactions.

A first `DeltaSweep` (or a full resync) of a 100k-user tenant stores about 300k membership rows
in table `groupmembers`. Written one row per request they took 25-50 minutes, past Flex
Consumption's 30-minute function timeout; `GroupMembers.apply` writes each group's rows in
Azure Table transactions of 100 (`EntityStore.write_batch`).

On a private Azurite: `--memberships` rows spread over `--groups` groups are written, then
deleted again (every member leaves), once row by row (`upsert` / `delete` per row, as before)
and once through `GroupMembers.apply`, each on a fresh table; after each phase the table is
listed (not timed): every row written after the join, none left after the leave, else the
script exits 1. Requests are counted with the
table client's `raw_response_hook` (a transaction is one request). Figures: requests and
seconds (wall, and this process's CPU: the SDK's share) per way and phase, and the batched
writes' time scaled to 300k memberships. Target: those 300k written in at most 10 minutes (a
third of the function timeout; the sweep also reads Graph). On loopback Azurite answers a
single write in a few ms, less than a round trip to Azure: the row-by-row way is slower still
there, the batched way (3,000 requests) barely. Most of a transaction's time here is CPU: the
SDK building the multipart request (about 50-70 ms per 100 rows) and Azurite handling it.

Run: `make bench` or `python bench/member_writes.py [--memberships N] [--groups G]`.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azure.data.tables import TableClient

from devhost.azurite import Azurite
from shared.adapters.tables import AzureTable
from shared.service.stores import GroupMembers

Figures = tuple[int, float, float]
"""Requests, wall seconds, CPU seconds of this process."""

TENANT_MEMBERSHIPS = 300_000
TARGET_S = 600.0


class CountedTable:
    """An `AzureTable` on a new table whose client counts the HTTP responses it receives."""

    def __init__(self, connection_string: str) -> None:
        self.requests = 0
        name = f"bench{uuid.uuid4().hex[:12]}"
        client = TableClient.from_connection_string(
            connection_string, name, raw_response_hook=self._count
        )
        self.client = client
        self.table = AzureTable(client, name)
        self.table.query("warm-up")  # creates the table; not counted below
        self.requests = 0

    def rows(self) -> int:
        """The rows the table holds now, listed with the SDK (outside any timed phase)."""
        return sum(1 for _ in self.client.list_entities(select=["RowKey"]))

    def _count(self, _response: Any) -> None:
        self.requests += 1


def timed(table: CountedTable, write: Callable[[], None]) -> Figures:
    """Requests, wall seconds and this process's CPU seconds (the SDK's part; the rest is
    Azurite's)."""
    before, start, cpu = table.requests, time.perf_counter(), time.process_time()
    write()
    return table.requests - before, time.perf_counter() - start, time.process_time() - cpu


def checked(
    table: CountedTable, join: Callable[[], None], leave: Callable[[], None], memberships: int
) -> list[Figures]:
    """Both phases timed, each checked afterwards: the join must leave every membership's
    row in the table, the leave none (a way that wrote nothing would be fastest)."""
    joined = timed(table, join)
    if (rows := table.rows()) != memberships:
        raise SystemExit(f"join wrote {rows} rows of {memberships}: its figures mean nothing")
    left = timed(table, leave)
    if rows := table.rows():
        raise SystemExit(f"leave left {rows} rows of {memberships}: its figures mean nothing")
    return [joined, left]


def row_by_row(table: CountedTable, members: dict[str, list[str]]) -> list[Figures]:
    def join() -> None:
        for group_id, users in members.items():
            for user_id in users:
                table.table.upsert(group_id, user_id, {})

    def leave() -> None:
        for group_id, users in members.items():
            for user_id in users:
                table.table.delete(group_id, user_id)

    return checked(table, join, leave, sum(map(len, members.values())))


def batched(table: CountedTable, members: dict[str, list[str]]) -> list[Figures]:
    store = GroupMembers(table.table)

    def join() -> None:
        for group_id, users in members.items():
            store.apply(group_id, users, ())

    def leave() -> None:
        for group_id, users in members.items():
            store.apply(group_id, (), users)

    return checked(table, join, leave, sum(map(len, members.values())))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memberships", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=4)
    args = parser.parse_args()
    group_ids = [str(uuid.uuid4()) for _ in range(args.groups)]
    members: dict[str, list[str]] = {g: [] for g in group_ids}
    for i in range(args.memberships):
        members[group_ids[i % args.groups]].append(str(uuid.uuid4()))

    with Azurite() as azurite:
        old = row_by_row(CountedTable(azurite.connection_string), members)
        new = batched(CountedTable(azurite.connection_string), members)

    print(f"{args.memberships} memberships in {args.groups} groups, Azurite tables")
    for phase, (o, n) in zip(
        ("join (upsert)", "leave (delete)"), zip(old, new, strict=True), strict=True
    ):
        print(
            f"  {phase}: row by row {o[0]} requests, {o[1]:.1f} s (CPU {o[2]:.1f} s); "
            f"transactions {n[0]} requests, {n[1]:.1f} s (CPU {n[2]:.1f} s), "
            f"{o[1] / n[1]:.1f}x faster"
        )
    scaled = new[0][1] * TENANT_MEMBERSHIPS / args.memberships
    verdict = "pass" if scaled <= TARGET_S else "FAIL"
    print(
        f"  {TENANT_MEMBERSHIPS} memberships (a 100k-user tenant's first sweep), scaled: "
        f"{scaled:.0f} s batched vs {old[0][1] * TENANT_MEMBERSHIPS / args.memberships:.0f} s "
        f"row by row (target <= {TARGET_S:.0f} s: {verdict})"
    )
    print(f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
