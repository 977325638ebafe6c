"""Delta partition slots: freed by groups deleted or left unlicensed, cleared for groups placed.

A delta partition filters on at most 50 groups. A licensed group that is deleted (soft or hard:
its delta round says `@removed`, and its configuration and members are forgotten) or that stays
unlicensed (stored as unlicensed at a sweep's start and still unlicensed in its fresh read) no
longer needs a slot: the sweep takes it out of its partition (`release_slots`), so a new group
fills the slot instead of a new partition being started.

A group that comes back (restored, or licensed again) is a group with no place: the
notification's look-up or the next sweep places it again like a new one, and its first round
is a full one. Its members are forgotten when it is released; when a crash kept them (its
unlicensed row is still stored), they are cleared before it is placed again
(`clear_before_placing`), so that full round counts every member as joined and sends them all
to be recomputed (the stored set, stale, would hide the ones who were members before).

Crash-safe, step by step: the group is first taken out of its partition (one conditional write
per partition), then its members are forgotten, then its unlicensed row (a conditional delete).
A crash in between leaves a stored unlicensed row with no place, which the next sweep forgets
(`release_slots` looks for them); the group licensed meanwhile is placed anew, its stale
members cleared first. A group
licensed while the sweep released it (its row no longer unlicensed, or written since it was
read) is put back at once, and else by the next sweep, which places every licensed group.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import structlog

from shared.service.nested import NESTED_PREFIX
from shared.service.stores import GroupMembers, LicensedGroups

log = structlog.get_logger(__name__)


def clear_before_placing(members: GroupMembers, group_ids: Iterable[str]) -> None:
    """Forget the stored members (and nested groups) of groups about to be placed: left from
    before they were released, they would hide members from the group's first full round."""
    for group_id in group_ids:
        for key in (group_id, NESTED_PREFIX + group_id):
            stored = members.members(key)
            if stored:
                members.apply(key, (), stored)


def release_slots(
    licensed: LicensedGroups, members: GroupMembers, idle: Iterable[str]
) -> list[str]:
    """Take the `idle` groups (placed, neither licensed now nor at the sweep's start) out of
    their partitions, then forget their unlicensed rows and members, with those of any
    unlicensed group a crash left without a place. Returns the groups taken out."""
    released = licensed.release(idle)
    placed = {g for p in licensed.partitions() for g in p.group_ids}
    orphans = licensed.unlicensed_ids() - placed
    back: list[str] = []
    for group_id in sorted({*released, *orphans}):
        if not licensed.forget_unlicensed(
            group_id, partial(clear_before_placing, members, [group_id])
        ):  # licensed since the sweep read it: it keeps its members and gets a place
            back.append(group_id)
    if back:
        licensed.assign(back)
    if released or orphans:
        log.info("delta.slots_released", released=len(released), orphans=len(orphans))
    return released
