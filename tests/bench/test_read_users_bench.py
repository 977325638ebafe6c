"""bench/read_users.py times `read_users` only when its join is right: a join that dropped
memberships was faster and passed (the result was thrown away). With `_members_by_group`
scratched to join nobody it printed "pass"; it now fails and exits 1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace

from bench.read_users import IndexedDirectory, join_problem
from shared.ports.directory import GroupConfig
from shared.service.stores import LicensedGroups
from shared.service.user_reads import read_users
from tests.python_run import ROOT
from tests.service.world import build_world, many_groups_per_user


def test_the_join_of_a_real_read_is_right_and_a_dropped_membership_is_not() -> None:
    snapshot, user_ids, members = many_groups_per_user(12, 5, 4)
    world = build_world(snapshot, fake=IndexedDirectory)
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in snapshot["groups"]:
        licensed.save_config(GroupConfig.from_graph(group))

    tenant = asyncio.run(read_users(world.svc, user_ids)).tenant

    assert join_problem(tenant.groups, tenant.users, members) == ""
    group_id = next(g for g, ids in members.items() if ids)
    short = dict(tenant.groups)
    short[group_id] = replace(short[group_id], member_user_ids=())
    problem = join_problem(short, tenant.users, members)
    assert problem == f"group {group_id}: 0 members joined, {len(members[group_id])} expected"
    assert join_problem(tenant.groups, {}, members) == "5 users not read"


def test_the_benchmark_passes_a_small_tenant() -> None:
    done = subprocess.run(
        [sys.executable, "bench/read_users.py", "--groups", "50", "--users", "10",
         "--per-user", "10", "--runs", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "target <= 0.2 s: pass" in done.stdout
