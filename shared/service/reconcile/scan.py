"""The scan's reads: the tenant's licensed world (SKUs, organization, licensed groups and their
members) and each page of users as the core's tenant, evaluated.

Shared by the nightly run, its dry run, the live health report and the admin's reprocess.
The world is read once as a typed `LicensedWorld` (`shared.adapters.world_document`
translates the Graph reads); each page of users becomes the core's model through the
adapter's translator, and the member index (user id -> licensed group ids) gives its
group memberships.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog

from shared.adapters.snapshot import GraphTranslator
from shared.adapters.world_document import core_groups, licensed_world
from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.core.evaluate import Evaluation, evaluate
from shared.core.model import Group, Tenant
from shared.ports.directory import JSON, Directory, DirectoryError
from shared.ports.licensed_world import LicensedWorld
from shared.service.nested import read_members, read_nested
from shared.service.reconcile.run_state import GROUPS, USERS
from shared.service.services import Services

log = structlog.get_logger(__name__)


async def user_total(directory: Directory) -> int | None:
    """The tenant's user count for the users phase's progress, or None when Graph will not
    say (a 403, a tenant or proxy without `$count`, a timeout): progress then shows no total,
    and the scan goes on."""
    try:
        return int(await directory.user_count())
    except DirectoryError as exc:
        log.warning("scan.user_count_unavailable", status=exc.status, code=exc.code)
        return None


async def read_world(
    directory: Directory, progress: Callable[[str, int, int | None], None] | None = None
) -> LicensedWorld:
    """SKUs, the organization, licensed groups with their user member ids (paged) and the
    ids of their group members (nested groups, which license nobody), those nested groups
    with their members, and, only when `progress` is given, the user count (None when
    unknown, see `user_total`), announced to it as the users phase's total."""
    skus = await directory.subscribed_skus()
    organization = await directory.organization()
    configs = await directory.licensed_group_configs()
    members: dict[str, list[str]] = {}
    nested_ids: dict[str, list[str]] = {}
    for n, config in enumerate(configs, 1):
        members[config.id], nested_ids[config.id] = await read_members(directory, config.id)
        if progress:
            progress(GROUPS, n, len(configs))
    nested_groups = await read_nested(directory, nested_ids)
    world = licensed_world(skus, organization, configs, members, nested_ids, nested_groups)
    if progress:  # no one watching: no count asked
        world = world.with_user_count(total := await user_total(directory))
        if total is not None:
            progress(USERS, 0, total)
    return world


def member_index(world: LicensedWorld) -> dict[str, tuple[str, ...]]:
    """User id -> the licensed groups it is a direct member of (group ids shared, not copied)."""
    index: dict[str, list[str]] = {}
    for group_id, user_ids in world.members.items():
        for user_id in user_ids:
            index.setdefault(user_id, []).append(group_id)
    return {u: tuple(g) for u, g in index.items()}


async def unlicensed_state_groups(
    directory: Directory, world: LicensedWorld, users: list[JSON]
) -> dict[str, Group]:
    """The groups this page's assignment states name that the world lacks (they lost their
    licenses since, or were deleted), with the page's members: read as the user pipeline reads
    them, so a stale state says "no longer assigns" there and here, not "no longer exists"
    for a group that still does. Deleted groups stay absent. Rare: one read when any."""
    holders: dict[str, set[str]] = {}
    for user in users:
        for state in user.get("licenseAssignmentStates") or ():
            group_id = state.get("assignedByGroup")
            if group_id and group_id not in world.groups:
                holders.setdefault(str(user["id"]), set()).add(str(group_id))
    if not holders:
        return {}
    configs = await directory.group_configs(sorted(set().union(*holders.values())))
    memberships = await directory.member_of(sorted(holders)) if configs else {}
    members = {g: [u for u in holders if g in memberships.get(u, ())] for g in configs}
    return core_groups(configs.values(), world.skus, members)


def page_tenant(
    world: LicensedWorld,
    index: Mapping[str, Sequence[str]],
    users: list[JSON],
    unlicensed: Mapping[str, Group] | None = None,
) -> Tenant:
    """One page of users as a tenant: the licensed groups with only this page's members (and
    the `unlicensed_state_groups` its states name, when read)."""
    members: dict[str, list[str]] = {gid: [] for gid in world.groups}
    tenant_users = GraphTranslator().users(users, world.skus)
    for user_id in tenant_users:
        for group_id in index.get(user_id, ()):
            members[group_id].append(user_id)
    groups = {**(unlicensed or {}), **world.groups_with_members(members)}
    return Tenant(world.skus, groups, tenant_users, world.organization)


def evaluate_page(
    world: LicensedWorld,
    index: Mapping[str, Sequence[str]],
    users: list[JSON],
    unlicensed: Mapping[str, Group] | None = None,
) -> tuple[Tenant, Evaluation]:
    tenant = page_tenant(world, index, users, unlicensed)
    return tenant, evaluate(tenant, *catalog().names_for(tenant), plan_conflicts())


def open_subjects(svc: Services) -> set[str]:
    """Subjects with an open finding: users with nothing found now need no ledger call unless
    they are here (one table scan instead of a query per user)."""
    return {
        str(e.fields.get("key") or "").split("|", 1)[0]
        for e in svc.tables.findings.query_all()
        if not e.fields.get("resolvedAt")
    }


def unseen_users(svc: Services, started: datetime) -> list[str]:
    """Users with open findings not seen since the run started: gone from the tenant."""
    out = set()
    for entity in svc.tables.findings.query_all():
        f = entity.fields
        subject = str(f.get("key") or "").split("|", 1)[0]
        last = f.get("lastSeen")
        if f.get("resolvedAt") or ":" in subject or not subject:
            continue
        if isinstance(last, datetime) and last < started:
            out.add(subject)
    return sorted(out)
