"""Benchmark `read_users`: the user pipeline's read of at most 100 users as a small tenant.

A recompute reads its users' memberships (`member_of`) and joins them onto every cached
licensed group. Asking each group about each user's list of groups cost groups × users ×
memberships: about 0.5 s CPU per 100-user recompute at 1,000 licensed groups and 300 groups
per user, on every recompute. The join now indexes the memberships once.

In memory (the service test world): `--groups` licensed groups in the cache, `--users` users,
each a direct member of `--per-user` of them. The directory is `FakeDirectory` with
`member_of` answered from an index built once, so what is timed is `read_users`' own work (the
translation, the cache read, the join), not the fake's scan. Figure: median CPU seconds per
`read_users` over `--runs` runs. Target: at most 0.2 s at the defaults (it was 0.5 s), with every
run's join right (each group holding exactly the users the tenant made its members).

Run: `make bench` or `python bench/read_users.py [--groups G] [--users U] [--per-user P]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.fakes.directory import FakeDirectory
from shared.ports.directory import GroupConfig
from shared.service.stores import LicensedGroups
from shared.service.user_reads import read_users
from tests.service.world import build_world, many_groups_per_user

TARGET_SECONDS = 0.2


class IndexedDirectory(FakeDirectory):
    """`member_of` from an index built once: the fake's own scan is not what is measured."""

    def __init__(self, snapshot: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(snapshot, **kwargs)
        self._member_of: dict[str, list[str]] = {}
        for group in snapshot["groups"]:
            for member in group.get("members", ()):
                self._member_of.setdefault(member["id"], []).append(group["id"])

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        return {u: list(self._member_of.get(u, ())) for u in user_ids if u in self.users}


def join_problem(
    groups: Mapping[str, Any], users: Mapping[str, Any], members: dict[str, list[str]]
) -> str:
    """What is wrong with a `read_users` tenant (empty: nothing): every user read, and each
    licensed group with exactly the users the tenant made its members. A join that drops
    memberships is faster, not better."""
    missing = [u for ids in members.values() for u in ids if u not in users]
    if missing:
        return f"{len(set(missing))} users not read"
    for group_id, expected in members.items():
        group = groups.get(group_id)
        got = set(group.member_user_ids) if group is not None else set()
        if got != set(expected):
            return f"group {group_id}: {len(got)} members joined, {len(set(expected))} expected"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    snapshot, user_ids, members = many_groups_per_user(args.groups, args.users, args.per_user)
    world = build_world(snapshot, fake=IndexedDirectory)
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in snapshot["groups"]:
        licensed.save_config(GroupConfig.from_graph(group))

    seconds = []
    wrong = ""
    for _ in range(args.runs):
        started = time.process_time()
        read = asyncio.run(read_users(world.svc, user_ids))
        seconds.append(time.process_time() - started)
        wrong = wrong or join_problem(read.tenant.groups, read.tenant.users, members)
    median = statistics.median(seconds)
    verdict = "pass" if median <= TARGET_SECONDS and not wrong else "FAIL"
    print(
        f"read_users: {args.users} users, {args.groups} licensed groups, {args.per_user} per user:"
        f" median {median:.3f} s CPU over {args.runs} runs"
        f" (target <= {TARGET_SECONDS} s: {verdict})"
    )
    if wrong:
        print(f"FAIL, the join is wrong, its time means nothing: {wrong}")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
