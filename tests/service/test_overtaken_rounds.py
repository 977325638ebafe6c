"""Two workers run one delta partition from one link (host.json batchSize 16): the round read
first and saved last must not undo the other's later view of a member set."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DeltaRound
from shared.ports.messages import DeltaSweep, GroupsChanged, format_timestamp
from shared.service.groups import handle_group_changes
from shared.service.stores import GroupMembers, LicensedGroups
from tests.demo_tenant import ADELE, E3_TEAMS, LYNNE
from tests.service.world import START, build_world, recomputed_users

pytestmark = pytest.mark.anyio


class HeldRound(FakeDirectory):
    """Graph whose next delta rounds, once read, are each held back from their caller until
    released (slow workers: another runs the same partition meanwhile)."""

    holds: list[tuple[asyncio.Event, asyncio.Event]]

    def hold_next(self) -> tuple[asyncio.Event, asyncio.Event]:
        """(read, release) of the next round: set when it was read; set it to release."""
        if not hasattr(self, "holds"):
            self.holds = []
        events = (asyncio.Event(), asyncio.Event())
        self.holds.append(events)
        return events

    async def group_delta(self, group_ids: Sequence[str], delta_link: str | None) -> DeltaRound:
        found = await super().group_delta(group_ids, delta_link)
        if getattr(self, "holds", None):
            read, release = self.holds.pop(0)
            read.set()
            await release.wait()
        return found


def changed(group_id: str) -> GroupsChanged:
    return GroupsChanged(
        group_ids=(group_id,), correlation_id="c", received_at=format_timestamp(START)
    )


async def test_an_older_round_saved_last_does_not_undo_a_later_join() -> None:
    world = build_world(fake=HeldRound)
    directory = world.directory
    assert isinstance(directory, HeldRound)
    directory.add_member(E3_TEAMS, LYNNE)
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s"))
    stored = GroupMembers(world.svc.tables.groupmembers)
    assert LYNNE in stored.members(E3_TEAMS)

    directory.remove_member(E3_TEAMS, LYNNE)
    read, release = directory.hold_next()
    slow = asyncio.create_task(handle_group_changes(world.svc, changed(E3_TEAMS)))
    await read.wait()  # the slow worker's round says: Lynne left
    directory.add_member(E3_TEAMS, LYNNE)
    await handle_group_changes(world.svc, changed(E3_TEAMS))  # this one's: she is back
    release.set()
    await slow

    assert LYNNE in stored.members(E3_TEAMS)
    assert LYNNE in recomputed_users(world)
    # and the link saved is the later round's: nothing is left for the next round to undo
    [partition] = LicensedGroups(world.svc.tables.deltalinks).partitions()
    after = await directory.group_delta(partition.group_ids, partition.delta_link)
    assert E3_TEAMS not in after.groups


async def test_a_later_round_overtaken_saves_nothing_and_is_seen_again_from_the_saved_link() -> (
    None
):
    """The slow worker read its round first and claims the partition first: its round is
    saved; the one read after it finds the partition claimed and saves nothing, and its join
    comes again in the next round, from the link the slow worker saved."""
    world = build_world(fake=HeldRound)
    directory = world.directory
    assert isinstance(directory, HeldRound)
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s"))
    stored = GroupMembers(world.svc.tables.groupmembers)

    directory.add_member(E3_TEAMS, ADELE)  # not a member until now
    read_slow, release_slow = directory.hold_next()
    read_fast, release_fast = directory.hold_next()
    slow = asyncio.create_task(handle_group_changes(world.svc, changed(E3_TEAMS)))
    await read_slow.wait()
    directory.add_member(E3_TEAMS, LYNNE)
    fast = asyncio.create_task(handle_group_changes(world.svc, changed(E3_TEAMS)))
    await read_fast.wait()
    release_slow.set()
    await slow
    release_fast.set()
    await fast
    assert stored.members(E3_TEAMS) >= {ADELE}
    assert LYNNE not in stored.members(E3_TEAMS)  # not saved from a round overtaken...

    await handle_group_changes(world.svc, changed(E3_TEAMS))

    assert LYNNE in stored.members(E3_TEAMS)  # ...and seen again from the saved link
