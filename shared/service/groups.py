"""Group changes: from "these groups changed" to "recompute these users".

A notification only says that a group changed. Most groups in a large tenant are not licensed
(Teams, Microsoft 365 and distribution groups), so ids are first classified against the stored
set of licensed groups; an unknown id costs one batched look-up, and a group that just gained
licenses joins a delta partition. Only partitions holding a changed licensed group run their
delta round; a sweep (after a sync cycle, a re-created subscription, a missed notification)
runs them all.

From each round: users who joined or left a licensed group, and every member of a group whose
licenses changed, are sent on as `RecomputeUsers` messages of at most 100 users. When a delta
token has expired (410), the partition is read again in full and compared with the stored
member sets, so leavers are still found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from shared.ports.directory import DeltaRound, DeltaTokenExpired, GroupConfig
from shared.ports.messages import DeltaSweep, GroupsChanged, RecomputeUsers
from shared.service.crashpoints import crash_point
from shared.service.group_slots import clear_before_placing, release_slots
from shared.service.licensed_refresh import placed_groups, refresh_licensed_groups
from shared.service.nested import NESTED_PREFIX, apply_nesting, record_nested_findings
from shared.service.services import Services
from shared.service.stores import GroupMembers, LicensedGroups, Partition, ServiceState

log = structlog.get_logger(__name__)

UNLICENSED_TTL = timedelta(minutes=10)
"""How long a group seen without licenses is skipped without a look-up. A group that gains
licenses meanwhile is found by the next licensed-group refresh (recheck timer) or sweep."""


@dataclass
class GroupChangeOutcome:
    ignored: list[str] = field(default_factory=list)
    newly_licensed: list[str] = field(default_factory=list)
    partitions_run: list[int] = field(default_factory=list)
    resynced: list[int] = field(default_factory=list)
    joined: int = 0
    left: int = 0
    license_changed: list[str] = field(default_factory=list)
    users: set[str] = field(default_factory=set)
    messages: int = 0
    nesting_changed: set[str] = field(default_factory=set)


async def handle_group_changes(
    svc: Services, msg: GroupsChanged | DeltaSweep
) -> GroupChangeOutcome:
    """Find who to recompute, send them on, and only then save what was learnt.

    Safe to run again from any point: what this round learnt (member sets, delta links,
    groups that lost their licenses) is saved only after the `RecomputeUsers` went out, so
    a failed send or a crash replays the round from the old link and finds the same users
    (a duplicate recompute is harmless; a lost one is not)."""
    outcome = GroupChangeOutcome()
    licensed = LicensedGroups(svc.tables.deltalinks)
    config = licensed.configs()
    was_licensed = set(config)
    members = GroupMembers(svc.tables.groupmembers)
    writes: list[Callable[[], object]] = []
    if not config or isinstance(msg, DeltaSweep):
        # First run, or a sweep (something may have been missed): learn the licensed groups
        # afresh. Groups that lost every license have their members recomputed.
        gained, lost = await refresh_licensed_groups(svc, licensed, config, writes=writes)
        outcome.newly_licensed.extend(gained)
        for group_id in lost:
            outcome.license_changed.append(group_id)
            outcome.users |= members.members(group_id)

    if isinstance(msg, DeltaSweep):
        targets = [p for p in licensed.partitions() if p.group_ids]  # not one left empty
    else:
        changed = await _classify(svc, licensed, members, config, msg.group_ids, outcome, writes)
        targets = [p for p in licensed.partitions() if changed & set(p.group_ids)]
    crash_point(svc, "groups.after_classify")

    rounds: list[tuple[Partition, str, list[Callable[[], object]]]] = []
    for partition in targets:
        own: list[Callable[[], object]] = []  # saved only if the partition is still as read
        link = await _run_partition(svc, licensed, members, config, partition, outcome, own)
        rounds.append((partition, link, own))
    crash_point(svc, "groups.after_delta_round")

    batches = RecomputeUsers.batches(
        sorted(outcome.users),
        reason="group membership or licenses changed",
        correlation_id=msg.correlation_id,
        group_ids=tuple(sorted(outcome.license_changed)),
    )
    outcome.messages = svc.send_all(batches)
    crash_point(svc, "groups.after_recompute_sent")
    # A group with nested groups licensed again, or no longer, changes its NestedGroupMember
    # findings though the round said nothing of its nesting: recorded from what the round
    # learnt before the writes that store it (a replay after them no longer sees the change).
    flipped = nesting_flipped(members, was_licensed, config) - outcome.nesting_changed
    await record_nested_findings(svc, flipped, msg.correlation_id, configs=config)
    for write in writes:
        write()
    links = _save_rounds(licensed, rounds)
    crash_point(svc, "groups.after_members_saved")
    # before the delta link: a replay from the old link sees the same nesting entries again
    await record_nested_findings(svc, outcome.nesting_changed, msg.correlation_id)
    crash_point(svc, "groups.after_nested_findings")
    for partition, link in links:
        if not licensed.save_delta_link(partition, link):
            log.info("delta.link_conflict", partition=partition.index)
    if isinstance(msg, DeltaSweep):
        # Groups deleted, or unlicensed at the sweep's start and still: their slots are freed
        # (a group that lost its licenses now is released by a later sweep, once its members
        # were recomputed and it is stored as unlicensed).
        now_licensed = {g for g, group in config.items() if group.licensed}
        kept = was_licensed | now_licensed | set(outcome.license_changed)
        placed = {g for p in targets for g in p.group_ids}
        release_slots(licensed, members, sorted(placed - kept))
    crash_point(svc, "groups.after_delta_link_saved")
    _record_liveness(svc, msg, outcome)
    crash_point(svc, "groups.after_liveness")
    log.info(
        "groups.changed",
        correlation_id=msg.correlation_id,
        ignored=len(outcome.ignored),
        partitions=outcome.partitions_run,
        resynced=outcome.resynced,
        joined=outcome.joined,
        left=outcome.left,
        license_changed=len(outcome.license_changed),
        users=len(outcome.users),
    )
    return outcome


def _save_rounds(
    licensed: LicensedGroups, rounds: list[tuple[Partition, str, list[Callable[[], object]]]]
) -> list[tuple[Partition, str]]:
    """Save each round's member sets (and what else it learnt) if its partition is still as
    this worker read it, claimed first (`LicensedGroups.claim`): two workers running one
    partition from one link must not save their member sets in either order (an older round
    saved last would undo a later join). A round overtaken is not saved: the partition's
    link it leaves behind replays its changes. Returns the claimed partitions' next links."""
    links: list[tuple[Partition, str]] = []
    for partition, link, own in rounds:
        claimed = licensed.claim(partition)
        if claimed is None:
            log.info("delta.round_overtaken", partition=partition.index)
            continue
        for write in own:
            write()
        links.append((claimed, link))
    return links


def nesting_flipped(
    members: GroupMembers, was_licensed: set[str], config: Mapping[str, GroupConfig]
) -> set[str]:
    """The groups with stored nested groups that were licensed before and are not now (gone,
    or licenses removed), or the reverse: `config` is what the caller learnt (a group that
    lost every license may stay in it, unlicensed). Their NestedGroupMember findings are to be
    re-evaluated."""
    now_licensed = {group_id for group_id, group in config.items() if group.licensed}
    flipped = was_licensed ^ now_licensed
    return {g for g in sorted(flipped) if members.members(NESTED_PREFIX + g)}


LAST_NOTIFICATION = "last-notification"
LAST_UNANNOUNCED_CHANGE = "last-unannounced-change"


def _record_liveness(
    svc: Services, msg: GroupsChanged | DeltaSweep, outcome: GroupChangeOutcome
) -> None:
    """Feed the dead-man switch: when notifications last came, and when a sweep last found
    changes in licensed groups (which notifications should have announced)."""
    state = ServiceState(svc.tables.servicestate)
    if isinstance(msg, GroupsChanged):
        state.put(LAST_NOTIFICATION, {"at": svc.now()})
    elif outcome.joined or outcome.left or outcome.license_changed:
        before = state.get(LAST_UNANNOUNCED_CHANGE)  # its notification may be on its way
        previous = before.fields.get("at") if before else None
        state.put(
            LAST_UNANNOUNCED_CHANGE, {"at": svc.now(), "reason": msg.reason, "previousAt": previous}
        )


async def _classify(
    svc: Services,
    licensed: LicensedGroups,
    members: GroupMembers,
    config: dict[str, GroupConfig],
    group_ids: Iterable[str],
    outcome: GroupChangeOutcome,
    writes: list[Callable[[], object]],
) -> set[str]:
    """The licensed ones among `group_ids`; unknown ids are looked up once, in one batch.

    A group licensed again (it kept its place in a partition, and its stored members) has
    its members recomputed, and is stored as licensed only after they went out."""
    now = svc.now()
    unlicensed = _unlicensed_cache(svc, now)
    ids = set(group_ids)
    known = ids & config.keys()
    unknown = sorted(ids - known - unlicensed.keys())
    outcome.ignored.extend(sorted(ids & unlicensed.keys()))
    if unknown:
        found = await svc.directory.group_configs(unknown)
        placed = placed_groups(licensed) if any(g.licensed for g in found.values()) else set()
        unplaced: list[GroupConfig] = []
        for group_id in unknown:
            group = found.get(group_id)
            if group is not None and group.licensed:
                if group_id in placed:
                    writes.append(partial(licensed.save_config, group))
                    outcome.license_changed.append(group_id)
                    outcome.users |= members.members(group_id)
                else:
                    unplaced.append(group)
                config[group_id] = group
                known.add(group_id)
                outcome.newly_licensed.append(group_id)
            else:
                unlicensed[group_id] = now
                outcome.ignored.append(group_id)
        if outcome.newly_licensed:
            if unplaced:  # released but not yet forgotten: members kept from before
                stale = {g.id for g in unplaced} & licensed.unlicensed_ids()
                clear_before_placing(members, sorted(stale))
            licensed.assign(outcome.newly_licensed)
        # Stored once placed: a retry after a failed placement finds the group unknown again
        # (stored first, it was a known group in no partition: no round, nobody recomputed).
        for group in unplaced:
            licensed.save_config(group)
    return known


def _unlicensed_cache(svc: Services, now: datetime) -> dict[str, datetime]:
    cache = svc.caches.unlicensed_groups
    for group_id, seen in list(cache.items()):
        if now - seen > UNLICENSED_TTL:
            cache.pop(group_id, None)  # another thread may have dropped it first
    return cache


async def _run_partition(
    svc: Services,
    licensed: LicensedGroups,
    members: GroupMembers,
    config: dict[str, GroupConfig],
    partition: Partition,
    outcome: GroupChangeOutcome,
    writes: list[Callable[[], object]],
) -> str:
    """One delta round: its changes into `outcome`, its store writes into `writes`; returns
    the next delta link (saved by the caller after the recomputes were sent)."""
    try:
        delta = await svc.directory.group_delta(partition.group_ids, partition.delta_link)
    except DeltaTokenExpired as exc:
        reason = "sync reset" if exc.status == 410 else "token expired or unknown"
        log.warning("delta.resync", partition=partition.index, reason=reason, code=exc.code)
        outcome.resynced.append(partition.index)
        delta = await svc.directory.group_delta(partition.group_ids, None)
    outcome.partitions_run.append(partition.index)
    again = _apply_round(delta, members, licensed, config, outcome, partition.group_ids, writes)
    if again:  # licensed again, first seen here: stored once its members are sent on
        for group in (await svc.directory.group_configs(again)).values():
            if group.licensed:
                writes.append(partial(licensed.save_config, group))
                config[group.id] = group
    return delta.delta_link


def _apply_round(
    delta: DeltaRound,
    members: GroupMembers,
    licensed: LicensedGroups,
    config: dict[str, GroupConfig],
    outcome: GroupChangeOutcome,
    group_ids: Iterable[str],
    writes: list[Callable[[], object]],
) -> list[str]:
    """The round's changes into `outcome` and `writes`; returns the groups it shows licensed
    that `config` does not hold as licensed (their configuration is the caller's to read)."""
    again: list[str] = []
    for group_id in group_ids:
        change = delta.groups.get(group_id)
        if change is None and not delta.initial:
            continue  # an incremental round names only the groups that changed
        # Read only when the round needs the stored set (not for a plain incremental change).
        needs_stored = change is None or change.deleted or delta.initial
        stored = members.members(group_id) if needs_stored else set()
        if change is None:
            # An initial round lists every group; one missing has no members (or is gone).
            writes.append(partial(members.apply, group_id, (), set(stored)))
            outcome.left += len(stored)
            outcome.users |= stored
            continue
        outcome.nesting_changed |= apply_nesting(members, group_id, change, delta.initial, writes)
        if change.deleted:
            writes.append(partial(members.apply, group_id, (), set(stored)))
            writes.append(partial(licensed.forget_group, group_id))
            outcome.left += len(stored)
            outcome.users |= stored
            config.pop(group_id, None)
            continue
        if delta.initial:
            current = set(change.added)
            joined, left = current - stored, stored - current
        else:
            joined = set(change.added) - set(change.removed)
            left = set(change.removed)
        writes.append(partial(members.apply, group_id, set(joined), set(left)))
        outcome.joined += len(joined)
        outcome.left += len(left)
        outcome.users |= joined | left
        old = config.get(group_id)
        if change.licenses and old is None:
            # Licensed again while stored as unlicensed (still in its partition), and this
            # round is the first to say so: its notification was skipped (looked up as
            # unlicensed minutes ago) or lost. Entra assigns its licenses to every member.
            again.append(group_id)
            outcome.license_changed.append(group_id)
            outcome.users |= (stored if needs_stored else members.members(group_id)) | joined
        elif (
            change.licenses is not None
            and old is not None
            and frozenset(change.licenses) != old.license_set
        ):
            outcome.license_changed.append(group_id)
            outcome.users |= (stored if needs_stored else members.members(group_id)) | joined
            updated = replace(
                old, licenses=change.licenses, display_name=change.display_name or old.display_name
            )
            writes.append(partial(licensed.save_config, updated))
            config[group_id] = updated
    return again
