"""The scan's reads: the tenant's licensed world (SKUs, organization, licensed groups and their
members) and each page of users as the core's tenant, evaluated.

Shared by the nightly run, its dry run, the live health report and the admin's reprocess.
Graph's objects become the core's model through the adapter's translator, page by page:
the member index (user id -> licensed group ids) gives each page's group memberships.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from shared.adapters.snapshot import GraphTranslator
from shared.catalog.products import catalog
from shared.core.evaluate import Evaluation, evaluate
from shared.core.model import Tenant
from shared.ports.directory import JSON, DirectoryError
from shared.service.nested import read_nested_groups
from shared.service.reconcile.run_state import GROUPS, USERS
from shared.service.services import Services

log = structlog.get_logger(__name__)


async def user_total(directory: Any) -> int | None:
    """The tenant's user count for the users phase's progress, or None when Graph will not
    say (a 403, a tenant or proxy without `$count`, a timeout): progress then shows no total,
    and the scan goes on."""
    try:
        return int(await directory.user_count())
    except DirectoryError as exc:
        log.warning("scan.user_count_unavailable", status=exc.status, code=exc.code)
        return None


async def read_world(
    directory: Any, progress: Callable[[str, int, int | None], None] | None = None
) -> JSON:
    """SKUs, the organization, licensed groups with their user member ids (paged) and the
    ids of their group members (`nestedGroupIds`: nested groups, which license nobody), those
    nested groups with their members (`nestedGroups`), and, only when `progress` is given, the
    user count (`userCount`; None when unknown, see `user_total`), announced to it as the
    users phase's total."""
    skus = await directory.subscribed_skus()
    organization = await directory.organization()
    groups = await directory.licensed_groups()
    for n, group in enumerate(groups, 1):
        ids: list[str] = []
        nested: list[str] = []
        link: str | None = None
        while True:
            page, link = await directory.group_members_page(group["id"], link, nested=nested)
            ids.extend(page)
            if link is None:
                break
        group["memberIds"] = ids
        group["nestedGroupIds"] = nested
        if progress:
            progress(GROUPS, n, len(groups))
    nested_groups = await read_nested_groups(directory, groups)
    world: JSON = {
        "skus": skus,
        "organization": organization,
        "groups": groups,
        "nestedGroups": nested_groups,
    }
    if progress:  # no one watching: no count asked
        world["userCount"] = total = await user_total(directory)
        if total is not None:
            progress(USERS, 0, total)
    return world


def member_index(world: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """User id -> the licensed groups it is a direct member of (group ids shared, not copied)."""
    index: dict[str, list[str]] = {}
    for group in world["groups"]:
        group_id = group["id"]
        for user_id in group.get("memberIds") or ():
            index.setdefault(user_id, []).append(group_id)
    return {u: tuple(g) for u, g in index.items()}


def page_tenant(
    world: Mapping[str, Any], index: Mapping[str, Sequence[str]], users: list[JSON]
) -> Tenant:
    """One page of users as a tenant: the licensed groups with only this page's members."""
    members: dict[str, list[str]] = {g["id"]: [] for g in world["groups"]}
    for user in users:
        for group_id in index.get(user["id"], ()):
            members[group_id].append(user["id"])
    translate = GraphTranslator()
    skus = translate.skus(world["skus"])
    tenant_users = translate.users(users, skus)
    groups = translate.groups(world["groups"], skus, members)
    return Tenant(skus, groups, tenant_users, translate.organization(world.get("organization")))


def evaluate_page(
    world: Mapping[str, Any], index: Mapping[str, Sequence[str]], users: list[JSON]
) -> tuple[Tenant, Evaluation]:
    tenant = page_tenant(world, index, users)
    return tenant, evaluate(tenant, *catalog().names_for(tenant))


def config_tenant_of(world: Mapping[str, Any]) -> Tenant:
    """The licensed groups and SKUs a scan read, as the core's tenant (no users)."""
    translate = GraphTranslator()
    skus = translate.skus(world["skus"])
    return Tenant(skus, translate.groups(world["groups"], skus, {}), {}, None)


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
