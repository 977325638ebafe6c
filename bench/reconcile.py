"""Benchmark the nightly reconciliation on a 100k-user tenant: requests vs the paging floor,
resource units, wall time and the worker's peak memory.

Starts `python -m graphsim --synthetic users=100000,groups=60` as a separate process (its memory
is not the worker's), then runs `shared.service.reconcile.nightly.reconcile_nightly` in this process
exactly as the timer does (act mode, so reprocesses are decided and queued), with the real
`GraphDirectory` over loopback HTTP, in-memory queues and tables, and reports written to a
directory (a `BlobStore` on the file system, so report bytes do not count as worker memory).

Figures:
* Graph requests (every HTTP request graphsim answered, 429s included) against the paging
  floor: ceil(users/999) + sum over licensed groups of ceil(members/999) + the fixed reads
  (SKUs, organization, licensed groups, groups with errors, the audit log since last night)
  + one membersWithLicenseErrors read per group in error (the self-check). Target: at most
  1.02 x floor.
* Resource units: the sum of graphsim's `x-ms-resource-unit` response headers, against the
  tenant's budget per window (graphsim's throttle configuration).
* Wall time and the worker's peak RSS (VmHWM), with the time limit of Flex Consumption (30 min).

Run: `make bench` or `python bench/reconcile.py [--synthetic users=100000,groups=60]`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphsim.client import SimClient
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.bootstrap import in_memory_services
from shared.fakes.tables import InMemoryTable
from shared.platform.settings import Settings
from shared.ports.tables import TABLE_NAMES, Entity, Tables
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.outputs import AUDIT_ACTIVITIES
from shared.service.reconcile.run_state import Options

TOKEN = "bench-static-token"
PAGE = 999
TARGET = 1.02
FLEX_LIMIT_S = 30 * 60


class DirBlobStore:
    """A BlobStore in a directory (reports stay on disk, not in the worker's memory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root / name

    def put(self, name: str, data: bytes, *, content_type: str) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_file(self, name: str, handle: IO[bytes], *, content_type: str) -> None:
        self.put(name, handle.read(), content_type=content_type)

    def get(self, name: str) -> bytes | None:
        path = self._path(name)
        return path.read_bytes() if path.is_file() else None

    def list(self, prefix: str = "") -> list[str]:
        names = (str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())
        return sorted(n for n in names if n.startswith(prefix))

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def delete_older_than(self, prefix: str, cutoff: datetime) -> int:
        return 0

    def size(self, prefix: str) -> int:
        return sum(self._path(n).stat().st_size for n in self.list(prefix))


class IndexedTable(InMemoryTable):
    """The in-memory table with a partition index: Azure Table storage answers a partition
    query from its index, while `InMemoryTable.query` sorts every row (fine for tests, not for
    100k users' ledgers)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._by_pk: dict[str, dict[str, Entity]] = {}

    def _put(self, pk: str, rk: str, fields: Any) -> str:
        etag = super()._put(pk, rk, fields)
        self._by_pk.setdefault(pk, {})[rk] = self._rows[(pk, rk)]
        return etag

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        super().delete(pk, rk, etag=etag)
        if (pk, rk) not in self._rows:
            self._by_pk.get(pk, {}).pop(rk, None)

    def query(self, pk: str) -> list[Entity]:
        rows = self._by_pk.get(pk, {})
        return [replace(rows[rk], fields=dict(rows[rk].fields)) for rk in sorted(rows)]


def peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settings(graph_url: str) -> Settings:
    never = "0 0 0 1 1 *"
    return Settings.from_env(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "GRAPH_BASE_URL": graph_url,
            "GRAPH_STATIC_TOKEN": TOKEN,
            "TENANT_ID": "00000000-0000-4000-8000-000000000001",
            "NOTIFICATION_URL": "http://127.0.0.1:9/api/graph/notifications",
            "LIFECYCLE_NOTIFICATION_URL": "http://127.0.0.1:9/api/graph/lifecycle",
            "CLIENT_STATE": "bench-client-state-0123456789",
            "LICENSE_GUARD_MODE": "act",
            "SUBSCRIPTION_KEEPER_SCHEDULE": never,
            "SYNC_WATCH_SCHEDULE": never,
            "RECHECK_ERRORS_SCHEDULE": never,
            "POISON_WATCH_SCHEDULE": never,
            "RECONCILE_SCHEDULE": never,
        }
    )


class Counting:
    """Wraps the directory to count what the floor is made of."""

    def __init__(self, inner: GraphDirectory) -> None:
        self.inner = inner
        self.users = 0
        self.members: dict[str, int] = {}
        self.error_groups = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def users_page(self, next_link: str | None, *, select: str) -> Any:
        page, link = await self.inner.users_page(next_link, select=select)
        self.users += len(page)
        return page, link

    async def group_members_page(
        self, group_id: str, next_link: str | None, *, nested: list[str] | None = None
    ) -> Any:
        page, link = await self.inner.group_members_page(group_id, next_link, nested=nested)
        self.members[group_id] = self.members.get(group_id, 0) + len(page)
        return page, link

    async def members_with_license_errors(self, group_id: str) -> list[str]:
        self.error_groups += 1
        return await self.inner.members_with_license_errors(group_id)


async def run(graph_url: str, reports: Path) -> dict[str, Any]:
    units = {"ru": 0, "requests": 0}

    async def on_response(response: httpx.Response) -> None:
        units["requests"] += 1
        units["ru"] += int(response.headers.get("x-ms-resource-unit") or 0)

    client = build_graph_client(graph_url, static_token=TOKEN)
    http = client.request_adapter._http_client  # a bench observing the wire
    http.event_hooks["response"].append(on_response)
    graph = GraphDirectory(client)
    directory = Counting(graph)
    blobs = DirBlobStore(reports)
    svc = in_memory_services(
        settings(graph_url),
        directory,  # type: ignore[arg-type]
        tables=Tables(*(IndexedTable(name) for name in TABLE_NAMES)),
        blobs=blobs,
    )
    # The first run is a baseline; the second is a regular night (what runs every night).
    await reconcile_nightly(svc, blobs, Options())  # type: ignore[arg-type]
    units["ru"] = units["requests"] = 0
    with SimClient(graph_url) as sim:
        sim.clear_counters()
    directory.users, directory.members, directory.error_groups = 0, {}, 0
    started = time.monotonic()
    result = await reconcile_nightly(svc, blobs, Options(force=True))  # type: ignore[arg-type]
    wall = time.monotonic() - started
    await graph.aclose()
    with SimClient(graph_url) as sim:
        counters = sim.counters()
    return {
        "counters": counters,
        "result": result,
        "wall": wall,
        "units": units,
        "users": directory.users,
        "members": directory.members,
        "error_groups": directory.error_groups,
        "report_bytes": blobs.size("nightly/"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", default="users=100000,groups=60")
    args = parser.parse_args()
    reports = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graphsim",
            "--synthetic",
            args.synthetic,
            "--port",
            "0",
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        graph_url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        with SimClient(graph_url) as sim:
            throttle = sim.set_throttle()
        figures = asyncio.run(run(graph_url, reports))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(reports, ignore_errors=True)

    result = figures["result"]
    members = figures["members"]
    # SKUs, organization, licensed groups, groups with errors; the audit log since last night
    # is one filtered query per activity (Graph filters activityDisplayName with eq only)
    fixed = 4 + len(AUDIT_ACTIVITIES)
    floor = (
        math.ceil(figures["users"] / PAGE)
        + sum(max(1, math.ceil(n / PAGE)) for n in members.values())
        + fixed
        + figures["error_groups"]
    )
    requests = figures["units"]["requests"]
    ratio = requests / floor
    print(f"tenant: {args.synthetic} ({figures['users']} users, {len(members)} licensed groups, "
          f"{sum(members.values())} memberships)")  # fmt: skip
    print(f"run {result.run_id}: {result.status}, {result.users} users, "
          f"{result.new_findings} new / {result.resolved_findings} resolved findings, "
          f"{result.queued} reprocess queued")  # fmt: skip
    print(f"Graph requests: {requests} vs floor {floor} "
          f"(ceil(users/999) + sum ceil(members/999) + {fixed} fixed + "
          f"{figures['error_groups']} error groups) = {ratio:.3f} x floor "
          f"[target <= {TARGET}: {'pass' if ratio <= TARGET else 'FAIL'}]")  # fmt: skip
    print(f"resource units: {figures['units']['ru']} "
          f"(graphsim budget {throttle.get('budget')} RU per "
          f"{throttle.get('windowSeconds')} s window)")  # fmt: skip
    for key, by_status in sorted(figures["counters"].items()):
        print(f"  {key}: {dict(sorted(by_status.items()))}")
    print(f"wall time: {figures['wall']:.1f} s (Flex Consumption limit {FLEX_LIMIT_S} s)")
    print(f"worker peak RSS: {peak_rss_mb():.0f} MB; reports written: "
          f"{figures['report_bytes'] / 1e6:.1f} MB")  # fmt: skip
    print(f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
