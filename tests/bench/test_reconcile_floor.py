"""bench/reconcile.py's floor comes from the tenant graphsim serves, not from what the code under
test read: it used to count the users, member pages and error groups the run itself asked for,
so a night that skipped pages (or stopped at its deadline) had a smaller floor and passed, and
one that read a group twice raised its own floor. A pass also needs the whole tenant covered,
the run finished and no Graph error among the requests counted."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bench.reconcile import NIGHTLY_FIXED, nightly_verdict, request_floor, tenant_floor
from tests.python_run import ROOT

LICENSE = [{"skuId": "sku-1", "disabledPlans": []}]


def user(n: int, *, error_from: str | None = None) -> dict[str, Any]:
    states = []
    if error_from:
        states = [{"assignedByGroup": error_from, "skuId": "sku-1", "state": "Error",
                   "error": "CountViolation"}]  # fmt: skip
    return {"id": f"user-{n}", "licenseAssignmentStates": states}


def tenant() -> dict[str, Any]:
    users = [user(n, error_from="big" if n == 5 else None) for n in range(2500)]
    big = {"id": "big", "assignedLicenses": LICENSE,
           "members": [{"id": u["id"]} for u in users[:1000]]}  # fmt: skip
    empty = {"id": "empty", "assignedLicenses": LICENSE, "members": []}
    plain = {"id": "plain", "assignedLicenses": [], "members": [{"id": "user-1"}]}
    return {"users": users, "groups": [big, empty, plain]}


def test_the_floor_counts_the_tenant_pages() -> None:
    floor = request_floor(tenant())

    assert floor == {
        "users": 3,  # 2,500 users, 999 a page
        "members": 2 + 1,  # 1,000 members: two pages; an empty group: one page
        "worldFixed": 3,
        "errorGroups": 1,  # user-5's assignment from "big" is in error
        "tenantUsers": 2500,
        "licensedGroups": 2,  # "plain" assigns no license
        "memberships": 1000,
    }


def night(**changes: Any) -> SimpleNamespace:
    return SimpleNamespace(**({"status": "done", "users": 2500} | changes))


def test_a_night_that_read_the_tenant_at_the_floor_passes() -> None:
    floor_parts = request_floor(tenant())
    floor = 3 + 3 + NIGHTLY_FIXED + 1

    assert nightly_verdict(floor_parts, floor, 0, night(), 2) == (floor, [])


def test_a_night_that_skipped_users_or_groups_fails_below_the_floor() -> None:
    floor_parts = request_floor(tenant())

    _, stopped = nightly_verdict(floor_parts, 8, 0, night(status="stopped", users=999), 1)

    assert stopped == [
        "run stopped",
        "999 of the tenant's 2500 users",
        "1 of the tenant's 2 licensed groups",
    ]


def test_a_night_over_the_floor_or_with_graph_errors_fails() -> None:
    floor_parts = request_floor(tenant())
    floor = 3 + 3 + NIGHTLY_FIXED + 1

    assert nightly_verdict(floor_parts, floor + 3, 0, night(), 2)[1] != []
    assert nightly_verdict(floor_parts, floor, 2, night(), 2)[1] == ["2 Graph errors"]


def test_the_synthetic_floor_is_worked_out_from_graphsims_tenant() -> None:
    floor = tenant_floor("users=300,groups=4,skus=4,unlicensed_groups=2")

    assert floor["tenantUsers"] == 300
    assert floor["users"] == 1
    assert floor["licensedGroups"] == 4
    assert floor["members"] == 4


def test_the_dry_run_benchmark_passes_a_small_tenant_end_to_end() -> None:
    """The benchmark itself, on graphsim and in-memory tables: the dry run covers every user
    at the floor (one page of users, four of members, SKUs, organization, licensed groups and
    the users' $count its progress shows)."""
    done = subprocess.run(
        [sys.executable, "bench/reconcile.py", "--dry-run", "--tables", "memory",
         "--synthetic", "users=300,groups=4,skus=4,unlicensed_groups=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip

    lines = [x for x in done.stdout.splitlines() if x.startswith("Graph requests")]
    assert lines, done.stdout + done.stderr[-2000:]
    assert "300 users" in done.stdout
    assert "dry run 9 (0 errors) vs floor 9 from the tenant" in lines[0], lines[0]
    assert "the whole tenant read, no Graph error: pass" in lines[0], lines[0]


def test_the_nightly_benchmark_measures_a_regular_next_night() -> None:
    """The measured run is the night after the baseline (the service's clock a day on), not a
    forced rerun of the same date, which retries no reprocess and sends no summary."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    done = subprocess.run(
        [sys.executable, "bench/reconcile.py",
         "--synthetic", "users=300,groups=4,skus=4,unlicensed_groups=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert f"\nrun {tomorrow}-" in done.stdout, done.stdout
    assert ": done, 300 users, 4 licensed groups read" in done.stdout
