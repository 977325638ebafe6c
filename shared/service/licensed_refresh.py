"""The licensed groups, learnt afresh from Graph: `refresh_licensed_groups` (a sweep, the first
run, the recheck timer) and `placed_groups` (the groups already in a delta partition)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from shared.ports.directory import GroupConfig
from shared.service.group_slots import clear_before_placing
from shared.service.services import Services
from shared.service.stores import GroupMembers, LicensedGroups


async def refresh_licensed_groups(
    svc: Services,
    licensed: LicensedGroups,
    config: dict[str, GroupConfig],
    *,
    writes: list[Callable[[], object]] | None = None,
) -> tuple[list[str], list[str]]:
    """Reload the licensed groups from Graph into `config` and the store; partition newcomers.

    Returns (gained, lost): groups licensed now and not before, and groups whose licenses went,
    changed or came back (one no longer licensed is kept in the store as unlicensed, so its
    members' stale assignments are explained): their members are the caller's to recompute,
    because once the fresh licenses are stored no later delta round sees the change (a group
    licensed again is still in its partition: no full round reads its members).
    With `writes`, the store is updated by the caller running them after it acted on the
    result (so a crash before that finds the same changes again); newcomers are partitioned
    at once (their first round is a full one, which a replay repeats).
    """
    fresh = {g.id: g for g in await svc.directory.licensed_group_configs()}
    gained = sorted(fresh.keys() - config.keys())
    lost = sorted(config.keys() - fresh.keys())
    changed = [
        g
        for g in sorted(fresh.keys() & config.keys())
        if fresh[g].license_set != config[g].license_set
    ]
    pending: list[Callable[[], object]] = [
        *(partial(licensed.save_config, group) for group in fresh.values()),
        *(partial(licensed.save_config, replace(config[g], licenses=())) for g in lost),
    ]
    placed = placed_groups(licensed)
    again = [g for g in gained if g in placed]
    config.clear()
    config.update(fresh)
    if fresh.keys() - placed:
        stale = (fresh.keys() - placed) & licensed.unlicensed_ids()  # released, not forgotten
        clear_before_placing(GroupMembers(svc.tables.groupmembers), sorted(stale))
    licensed.assign(fresh)
    for group_id in gained:  # stored once placed, as `shared.service.groups` classifies
        if group_id not in placed:
            licensed.save_config(fresh[group_id])
    if writes is None:
        for write in pending:
            write()
    else:
        writes.extend(pending)
    return gained, sorted([*lost, *changed, *again])


def placed_groups(licensed: LicensedGroups) -> set[str]:
    """The groups in a delta partition: licensed now, or once (a group stays where it was
    placed when it loses its licenses)."""
    return {g for p in licensed.partitions() for g in p.group_ids}
