"""Nested groups in licensed groups: read them, and say how many users they leave unlicensed.

Group-based licensing licenses only a group's direct user members; a group nested in a licensed
group gets nothing for its users (graph-facts §4.1). The member read of a licensed group sees
its group members (`nestedGroupIds`); this reads those groups' own members (at any depth) so
`NestedGroupMember` can count the users left out, and turns them into one finding per licensed
group, recorded under the subject `group:<id>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial

from shared.core.findings import Finding, Names
from shared.core.group_findings import group_findings
from shared.core.model import Group, Tenant
from shared.ports.directory import Directory, GroupConfig, GroupDelta
from shared.ports.licensed_world import LicensedWorld
from shared.ports.paging import FollowedLinks
from shared.service.services import Services
from shared.service.stores import FindingsLedger, GroupMembers, LicensedGroups


async def read_members(directory: Directory, group_id: str) -> tuple[list[str], list[str]]:
    """A group's direct members, every page: its user member ids and its group member ids."""
    users: list[str] = []
    nested: list[str] = []
    link: str | None = None
    followed = FollowedLinks()
    while True:
        page, link = await directory.group_members_page(group_id, link, nested=nested)
        link = followed.follow(link)  # a cycle (A -> B -> A) stops here
        users.extend(page)
        if link is None:
            return users, nested


async def read_nested(directory: Directory, licensed: Mapping[str, Iterable[str]]) -> list[Group]:
    """The groups nested (at any depth) in the `licensed` groups (id -> its nested group ids),
    each with its user members and its own nested group ids."""
    known = set(licensed)
    todo = [gid for nested in licensed.values() for gid in nested if gid not in known]
    found: list[Group] = []
    while todo:
        batch = [g for g in dict.fromkeys(todo) if g not in known]
        todo = []
        known.update(batch)
        if not batch:
            break
        for config in (await directory.group_configs(batch)).values():
            users, nested = await read_members(directory, config.id)
            found.append(
                Group(
                    id=config.id,
                    name=config.display_name or config.id,
                    licenses=config.licenses,  # one licensed itself gives its users the same
                    member_user_ids=tuple(users),
                    member_group_ids=tuple(nested),
                )
            )
            todo.extend(nested)
    return found


def nested_group_findings(world: LicensedWorld) -> dict[str, list[Finding]]:
    """For each licensed group a scan read (its licenses, user members and nested group ids,
    the nested groups as `read_nested` read them): its NestedGroupMember finding, or none."""
    groups = {g.id: g for g in world.nested_groups}
    for group_id, group in world.groups.items():
        # the group as read (synced, dynamic: where the remedy says to change its membership)
        groups[group_id] = replace(
            group,
            member_user_ids=world.members.get(group_id, ()),
            member_group_ids=world.nested_ids.get(group_id, ()),
        )
    return nested_findings(groups, list(world.groups))


def nested_findings(
    groups: Mapping[str, Group], licensed: Iterable[str]
) -> dict[str, list[Finding]]:
    """For each `licensed` group id: its NestedGroupMember finding, or none, given every
    licensed and nested group in `groups`."""
    whole = Tenant({}, groups, {})
    names = Names(whole)
    return {group_id: group_findings(groups[group_id], whole, names) for group_id in licensed}


# --------------------------------------------------------------------------- event path

NESTED_PREFIX = "nested:"
"""GroupMembers partition holding a licensed group's nested group ids (`nested:<group id>`)."""


def apply_nesting(
    members: GroupMembers,
    group_id: str,
    change: GroupDelta,
    initial: bool,
    writes: list[Callable[[], object]],
) -> set[str]:
    """Keep the stored nested groups of `group_id` in step with a delta round's group-type
    `members@delta` entries: the store write goes into `writes` (saved by the caller once the
    recomputes went out). Returns {group_id} when the round says anything of its nesting, so a
    replay of the same round (after a crash) re-evaluates the finding; else an empty set."""
    said = bool(change.nested_added or change.nested_removed)
    if not (said or change.deleted or initial):
        return set()  # an incremental round silent on nesting changes nothing: no read
    key = NESTED_PREFIX + group_id
    stored = members.members(key)
    if change.deleted:
        wanted: set[str] = set()
    elif initial:
        wanted = set(change.nested_added)
    else:
        wanted = (stored | set(change.nested_added)) - set(change.nested_removed)
    joined, left = wanted - stored, stored - wanted
    if joined or left:
        writes.append(partial(members.apply, key, joined, left))
    return {group_id} if joined or left or said else set()


async def record_nested_findings(
    svc: Services,
    group_ids: Iterable[str],
    correlation_id: str,
    *,
    configs: Mapping[str, GroupConfig] | None = None,
) -> None:
    """Re-evaluate NestedGroupMember for licensed groups whose nesting changed: read the
    nested groups (and their members), record the finding under `group:<id>`. The groups'
    licensing is `configs` (what a caller learnt and has not stored yet), else the store's."""
    wanted = sorted(set(group_ids))
    if not wanted:
        return
    members = GroupMembers(svc.tables.groupmembers)
    if configs is None:
        configs = LicensedGroups(svc.tables.deltalinks).configs()
    licensed: dict[str, Group] = {}
    for group_id in wanted:
        config = configs.get(group_id)
        if config is None or not config.licensed:
            continue
        licensed[group_id] = Group(
            id=group_id,
            name=config.display_name or group_id,
            licenses=config.licenses,
            member_user_ids=tuple(sorted(members.members(group_id))),
            member_group_ids=tuple(sorted(members.members(NESTED_PREFIX + group_id))),
            membership_rule=config.membership_rule,
            synced_from_on_premises=config.on_premises_sync_enabled is True,
        )
    seeds = {gid: g.member_group_ids for gid, g in licensed.items()}
    nested = {g.id: g for g in await read_nested(svc.directory, seeds)}
    ledger = FindingsLedger(svc.tables.findings)
    now = svc.now()
    for group_id, found in nested_findings(nested | licensed, licensed).items():
        ledger.reconcile(f"group:{group_id}", found, now=now, run_id=correlation_id)
    for group_id in set(wanted) - licensed.keys():
        ledger.reconcile(f"group:{group_id}", [], now=now, run_id=correlation_id)
