"""`FakeDirectory.member_of` answers from an index of who is in which group: a big fake (the
benchmarks', the reliability suite's) answers a page of users at once, not after scanning every
group's members for each user. The contract tests check what it answers."""

from __future__ import annotations

import time
import uuid

import pytest

from shared.fakes.directory import FakeDirectory

pytestmark = pytest.mark.anyio

GROUPS = 2_000
MEMBERS_PER_GROUP = 50


def _big_tenant() -> tuple[dict[str, object], list[str]]:
    users = [str(uuid.UUID(int=i + 1)) for i in range(GROUPS * MEMBERS_PER_GROUP // 10)]
    groups = [
        {
            "id": str(uuid.UUID(int=10**9 + g)),
            "displayName": f"group {g}",
            "members": [
                {"id": users[(g * MEMBERS_PER_GROUP + m) % len(users)]}
                for m in range(MEMBERS_PER_GROUP)
            ],
        }
        for g in range(GROUPS)
    ]
    snapshot = {"users": [{"id": u} for u in users], "groups": groups, "subscribedSkus": []}
    return snapshot, users


async def test_member_of_a_page_of_users_does_not_scan_every_group() -> None:
    snapshot, users = _big_tenant()
    directory = FakeDirectory(snapshot)
    asked = users[:500]

    started = time.perf_counter()
    got = await directory.member_of(asked)
    elapsed = time.perf_counter() - started

    assert all(len(groups) == 10 for groups in got.values())
    assert elapsed < 0.5, f"member_of took {elapsed:.2f}s for {len(asked)} users"


async def test_member_of_follows_the_mutators() -> None:
    snapshot, users = _big_tenant()
    directory = FakeDirectory(snapshot)
    group_ids = list(directory.groups)
    first, second, other = group_ids[0], group_ids[200], group_ids[1]  # users[0] is in the two
    user = users[-1]

    directory.add_member(other, user)
    directory.remove_member(first, users[0])
    directory.delete_group(second)

    assert other in (await directory.member_of([user]))[user]
    groups_of_first_user = (await directory.member_of([users[0]]))[users[0]]
    assert first not in groups_of_first_user
    assert second not in groups_of_first_user
    assert len(groups_of_first_user) == 8
