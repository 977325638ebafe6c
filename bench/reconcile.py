"""Benchmark the nightly reconciliation on a 100k-user tenant: requests vs the paging floor,
resource units, wall time and the worker's peak memory.

Starts `python -m graphsim --synthetic users=100000,groups=60` as a separate process (its memory
is not the worker's), then runs `shared.service.reconcile.nightly.reconcile_nightly` in this process
exactly as the timer does (act mode, so reprocesses are decided and queued), with the real
`GraphDirectory` over loopback HTTP (the CLI's: `shared.bootstrap.graph_session`, counting
requests with its `on_response` hook), in-memory queues and tables, and reports written to a
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

`--dry-run` measures `license-guard reconcile --dry-run` instead (the same code path,
in-process: `reconcile_nightly` with `Options(dry_run=True)`) on a 20k-user tenant
(`users=20000,seed=7`), against the paging floor: the same Graph reads (the licensed world and
every page of users) with nothing else. The dry run's tables are Azure tables on a private
Azurite (what the CLI reads: a ledger read is a round trip); `--tables memory` uses in-memory
ones instead. Prints both wall times and their ratio (target <= 3 x),
the dry run's requests against the floor's (target <= 1.02 x; the dry run's include the one
`GET /users/$count` its progress asks for) and the worker's peak RSS.

Run: `make bench` or `python bench/reconcile.py [--synthetic users=100000,groups=60]`
or `python bench/reconcile.py --dry-run [--synthetic users=20000,seed=7]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.azurite import Azurite
from graphsim.client import SimClient
from shared.adapters.tables import tables_for
from shared.bootstrap import GraphSession, graph_session, in_memory_services
from shared.fakes.tables import InMemoryTable
from shared.platform.settings import Settings
from shared.ports.directory import USER_SELECT, Directory
from shared.ports.tables import TABLE_NAMES, Entity, Tables
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.outputs import AUDIT_ACTIVITIES
from shared.service.reconcile.run_state import Options
from shared.service.reconcile.scan import read_world

TOKEN = "bench-static-token"
PAGE = 999
TARGET = 1.02
FLEX_LIMIT_S = 30 * 60
DRY_RUN_TARGET = 3.0
DRY_RUN_TENANT = "users=20000,seed=7"
NIGHTLY_TENANT = "users=100000,groups=60"


def request_floor(tenant: dict[str, Any], page: int = PAGE) -> dict[str, int]:
    """The Graph requests a complete night cannot do without, counted from the tenant graphsim
    serves, never from what the code under test read (a floor counted from its own reads
    shrinks with a run that skips pages and grows with one that reads a group twice):

    * `users`: ceil(users / page), the users' pages (at least one);
    * `members`: for each licensed group, ceil(direct members / page), at least one page
      (Graph pages users and nested groups alike);
    * `worldFixed`: SKUs, organization, the licensed groups (`assignedLicenses/any()`);
    * `errorGroups`: the licensed groups Graph lists with `hasMembersWithLicenseErrors`, each
      read once for its members in error (the nightly's self-check; graphsim's own rule).

    Also the counts a complete run must have covered: `tenantUsers`, `licensedGroups`,
    `memberships`."""
    from graphsim.license_status import members_with_license_errors  # noqa: PLC0415

    users = {u["id"]: u for u in tenant["users"]}
    groups = {g["id"]: g for g in tenant["groups"]}
    licensed = [g for g in tenant["groups"] if g.get("assignedLicenses")]
    memberships = [len(g.get("members") or ()) for g in licensed]
    in_error = [g for g in licensed if members_with_license_errors(g["id"], users, groups)]
    return {
        "users": max(1, math.ceil(len(users) / page)),
        "members": sum(max(1, math.ceil(n / page)) for n in memberships),
        "worldFixed": 3,
        "errorGroups": len(in_error),
        "tenantUsers": len(users),
        "licensedGroups": len(licensed),
        "memberships": sum(memberships),
    }


def tenant_floor(spec: str) -> dict[str, int]:
    """`request_floor` of the synthetic tenant `python -m graphsim --synthetic spec` serves,
    worked out in a child process: the worker's peak RSS is this process's, and a 100k-user
    tenant held here would be most of it."""
    done = subprocess.run(
        [sys.executable, __file__, "--floor-of", spec],
        check=True,
        capture_output=True,
        text=True,
    )
    floor: dict[str, int] = json.loads(done.stdout)
    return floor


def print_floor(spec: str) -> None:
    from graphsim.synthetic import generate_tenant, parse_synthetic_spec  # noqa: PLC0415

    print(json.dumps(request_floor(generate_tenant(**parse_synthetic_spec(spec)))))


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

    def __init__(self, inner: Directory) -> None:
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


def observed_directory(graph_url: str) -> tuple[GraphSession, dict[str, int]]:
    """The CLI's Graph session (`shared.bootstrap.graph_session`) whose HTTP requests and
    resource units are counted."""
    seen = {"requests": 0, "ru": 0, "errors": 0}

    async def on_response(response: httpx.Response) -> None:
        seen["requests"] += 1
        seen["errors"] += response.status_code >= 400 and response.status_code != 429
        seen["ru"] += int(response.headers.get("x-ms-resource-unit") or 0)

    return graph_session(graph_url, static_token=TOKEN, on_response=on_response), seen


async def run(graph_url: str, reports: Path) -> dict[str, Any]:
    graph, units = observed_directory(graph_url)
    directory = Counting(graph.directory)
    blobs = DirBlobStore(reports)
    night = [timedelta(0)]
    svc = in_memory_services(
        settings(graph_url),
        directory,  # type: ignore[arg-type]
        clock=lambda: datetime.now(UTC) + night[0],
        tables=Tables(*(IndexedTable(name) for name in TABLE_NAMES)),
        blobs=blobs,
    )
    # The first run is a baseline; the second is a regular night (what runs every night): the
    # next date, on the service's clock. A forced second run of the same date is a rerun, which
    # retries no reprocess and sends no summary: not what a night does.
    await reconcile_nightly(svc, blobs, Options())
    night[0] = timedelta(days=1)
    units["ru"] = units["requests"] = units["errors"] = 0
    with SimClient(graph_url) as sim:
        sim.clear_counters()
    directory.users, directory.members, directory.error_groups = 0, {}, 0
    started = time.monotonic()
    result = await reconcile_nightly(svc, blobs, Options())
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


async def page_floor(graph_url: str) -> dict[str, Any]:
    """The paging floor: the dry run's Graph reads (the licensed world, every page of users)
    with nothing done with them."""
    graph, seen = observed_directory(graph_url)
    started = time.monotonic()
    await read_world(graph.directory)
    link: str | None = None
    users = 0
    while True:
        page, link = await graph.directory.users_page(link, select=USER_SELECT)
        users += len(page)
        if link is None:
            break
    wall = time.monotonic() - started
    await graph.aclose()
    return {"wall": wall, "requests": seen["requests"], "users": users}


async def dry_run_once(graph_url: str, reports: Path, tables: Tables) -> dict[str, Any]:
    """`license-guard reconcile --dry-run`'s code path on a fresh install's state."""
    graph, seen = observed_directory(graph_url)
    blobs = DirBlobStore(reports)
    svc = in_memory_services(settings(graph_url), graph.directory, tables=tables, blobs=blobs)
    started = time.monotonic()
    # as the CLI runs it: with a progress callback (the CLI always passes one, `--quiet` only
    # silences it), which also makes the scan ask Graph for the users total ($count)
    options = Options(dry_run=True, force=True, progress=lambda phase, done, total: None)
    result = await reconcile_nightly(svc, blobs, options)
    wall = time.monotonic() - started
    await graph.aclose()
    return {"wall": wall, "requests": seen["requests"], "errors": seen["errors"], "result": result}


async def run_dry(graph_url: str, reports: Path, tables: Tables) -> dict[str, Any]:
    await page_floor(graph_url)  # warm-up: graphsim's first answers are not the floor
    dry = await dry_run_once(graph_url, reports, tables)
    floor = await page_floor(graph_url)
    return {"dry": dry, "floor": floor}


def dry_run_figures(graph_url: str, reports: Path, storage: str) -> dict[str, Any]:
    if storage == "memory":
        tables = Tables(*(IndexedTable(name) for name in TABLE_NAMES))
        return asyncio.run(run_dry(graph_url, reports, tables))
    with Azurite() as azurite:
        tables = tables_for(azurite.connection_string)
        return asyncio.run(run_dry(graph_url, reports, tables))


def verdict(problems: list[str]) -> str:
    return f"FAIL ({'; '.join(problems)})" if problems else "pass"


def report_dry(
    tenant: str, storage: str, floor_parts: dict[str, int], figures: dict[str, Any]
) -> int:
    """The dry run against the paging floor: its wall time against the floor's, measured in the
    same run; its requests against the floor's reads counted from the tenant (`request_floor`:
    the users' pages, the licensed groups' member pages, SKUs, organization and the licensed
    groups, and the users' `$count` the CLI's progress asks for), not as the code under test
    read them; and it must cover the tenant, finish, and
    meet no Graph error."""
    dry, floor = figures["dry"], figures["floor"]
    result = dry["result"]
    fixed = floor_parts["worldFixed"] + 1  # and the users' $count the CLI's progress asks for
    floor_requests = floor_parts["users"] + floor_parts["members"] + fixed
    time_ratio = dry["wall"] / floor["wall"]
    request_ratio = dry["requests"] / floor_requests
    time_ok = time_ratio <= DRY_RUN_TARGET
    problems = [] if request_ratio <= TARGET else [f"{request_ratio:.3f} x floor"]
    if result.users != floor_parts["tenantUsers"] or floor["users"] != result.users:
        problems.append(f"{result.users} of the tenant's {floor_parts['tenantUsers']} users")
    if result.status != "dry-run":
        problems.append(f"run {result.status}")
    if dry["errors"]:
        problems.append(f"{dry['errors']} Graph errors")
    print(f"tenant: {tenant} ({floor_parts['tenantUsers']} users), tables: {storage}")
    print(f"dry run {result.run_id}: {result.status}{' baseline' if result.baseline else ''}, "
          f"{result.users} users, {result.new_findings} new / {result.resolved_findings} "
          f"resolved findings, {result.queued} reprocess(es), {result.would_reprocess} "
          f"would be reprocessed, {len(result.planned)} plan lines")  # fmt: skip
    print(f"wall time: dry run {dry['wall']:.1f} s vs paging floor {floor['wall']:.1f} s "
          f"= {time_ratio:.2f} x floor "
          f"[target <= {DRY_RUN_TARGET:g}: {'pass' if time_ok else 'FAIL'}]")  # fmt: skip
    print(f"Graph requests: dry run {dry['requests']} ({dry['errors']} errors) vs floor "
          f"{floor_requests} from the tenant ({floor_parts['users']} user pages + "
          f"{floor_parts['members']} member pages + {fixed} fixed, $count included; the "
          f"paging floor made {floor['requests']}) = {request_ratio:.3f} x floor "
          f"[target <= {TARGET}, the whole tenant read, no Graph error: "
          f"{verdict(problems)}]")  # fmt: skip
    print(f"worker peak RSS: {peak_rss_mb():.0f} MB")
    print(f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 0 if time_ok and not problems else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", default=None)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"time `reconcile --dry-run` against the paging floor ({DRY_RUN_TENANT})",
    )
    parser.add_argument(
        "--tables",
        choices=("azurite", "memory"),
        default="azurite",
        help="the dry run's tables: Azure tables on a private Azurite (the CLI's) or in memory",
    )
    parser.add_argument("--floor-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_of:  # the child of `tenant_floor`
        print_floor(args.floor_of)
        return 0
    args.synthetic = args.synthetic or (DRY_RUN_TENANT if args.dry_run else NIGHTLY_TENANT)
    floor_parts = tenant_floor(args.synthetic)
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
        if args.dry_run:
            figures = dry_run_figures(graph_url, reports, args.tables)
        else:
            figures = asyncio.run(run(graph_url, reports))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(reports, ignore_errors=True)

    if args.dry_run:
        return report_dry(args.synthetic, args.tables, floor_parts, figures)

    return report_nightly(args.synthetic, floor_parts, throttle, figures)


NIGHTLY_FIXED = 4 + len(AUDIT_ACTIVITIES)
"""SKUs, organization, licensed groups, groups with errors; the audit log since last night is
one filtered query per activity (Graph filters activityDisplayName with eq only)."""


def nightly_verdict(
    floor_parts: dict[str, int], requests: int, errors: int, result: Any, groups_read: int
) -> tuple[int, list[str]]:
    """The floor and what keeps the night from passing: more requests than the target allows,
    a run that did not finish or did not cover the tenant (fewer requests than the floor are
    no virtue when users or groups were skipped), or Graph errors counted as requests."""
    floor = (
        floor_parts["users"] + floor_parts["members"] + NIGHTLY_FIXED + floor_parts["errorGroups"]
    )
    problems = []
    if requests > TARGET * floor:
        problems.append(f"{requests / floor:.3f} x floor")
    if result.status != "done":
        problems.append(f"run {result.status}")
    if result.users != floor_parts["tenantUsers"]:
        problems.append(f"{result.users} of the tenant's {floor_parts['tenantUsers']} users")
    if groups_read != floor_parts["licensedGroups"]:
        problems.append(
            f"{groups_read} of the tenant's {floor_parts['licensedGroups']} licensed groups"
        )
    if errors:
        problems.append(f"{errors} Graph errors")
    return floor, problems


def report_nightly(
    tenant: str, floor_parts: dict[str, int], throttle: dict[str, Any], figures: dict[str, Any]
) -> int:
    result = figures["result"]
    requests = figures["units"]["requests"]
    floor, problems = nightly_verdict(
        floor_parts, requests, figures["units"]["errors"], result, len(figures["members"])
    )
    print(f"tenant: {tenant} ({floor_parts['tenantUsers']} users, "
          f"{floor_parts['licensedGroups']} licensed groups, "
          f"{floor_parts['memberships']} memberships)")  # fmt: skip
    print(f"run {result.run_id}: {result.status}, {result.users} users, "
          f"{len(figures['members'])} licensed groups read, "
          f"{result.new_findings} new / {result.resolved_findings} resolved findings, "
          f"{result.queued} reprocess queued")  # fmt: skip
    print(f"Graph requests: {requests} ({figures['units']['errors']} errors) vs floor {floor} "
          f"from the tenant ({floor_parts['users']} user pages + {floor_parts['members']} "
          f"member pages + {NIGHTLY_FIXED} fixed + {floor_parts['errorGroups']} error groups) "
          f"= {requests / floor:.3f} x floor [target <= {TARGET}, the whole tenant read, "
          f"no Graph error: {verdict(problems)}]")  # fmt: skip
    print(f"resource units: {figures['units']['ru']} "
          f"(graphsim budget {throttle.get('budget')} RU per "
          f"{throttle.get('windowSeconds')} s window)")  # fmt: skip
    for key, by_status in sorted(figures["counters"].items()):
        print(f"  {key}: {dict(sorted(by_status.items()))}")
    print(f"wall time: {figures['wall']:.1f} s (Flex Consumption limit {FLEX_LIMIT_S} s)")
    print(f"worker peak RSS: {peak_rss_mb():.0f} MB; reports written: "
          f"{figures['report_bytes'] / 1e6:.1f} MB")  # fmt: skip
    print(f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
