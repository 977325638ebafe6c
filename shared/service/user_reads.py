"""The user pipeline's reads: users from Graph as the core's tenant, the SKU cache, the groups'
fresh processing states, and the reprocess ledger read once per user.

For at most 100 users at a time: their states and memberships come from Graph (batched), the
licensed groups' configuration and the SKUs from the service's cache (SKUs refreshed when
older than `SKU_MAX_AGE`, or when a user holds one the cache does not know). The adapter's
translator turns Graph's objects into the core's model; nothing here re-parses a document.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.snapshot import GraphTranslator
from shared.adapters.world_document import core_groups
from shared.core.findings import Finding
from shared.core.model import Sku, Tenant, User
from shared.core.reprocess import PROCESSING_GATED
from shared.ports.directory import GroupConfig
from shared.ports.tables import Entity, EntityStore, EntityValue, Upserts
from shared.service.services import Services
from shared.service.stores import LicensedGroups, ServiceState

SKU_MAX_AGE = timedelta(hours=1)


async def skus_for(
    svc: Services, *, refresh: bool = False, named: Iterable[str] = ()
) -> tuple[dict[str, Sku], datetime]:
    """Subscribed SKUs from the cache, refreshed from Graph when stale, asked, or when one of
    the `named` ids is missing, and when they were read from Graph, at the latest (the cache's
    time is read before its rows; a refresh's is taken before it asks). An id a fresh read did
    not list either (Graph keeps a group's license after its subscription is gone) does not
    refresh again until the cache is stale."""
    state = ServiceState(svc.tables.servicestate)
    skus, refreshed = state.skus()
    now = svc.now()
    not_listed = svc.caches.skus_not_listed
    missing = {
        sku_id
        for sku_id in named
        if sku_id not in skus
        and not (sku_id in not_listed and now - not_listed[sku_id] < SKU_MAX_AGE)
    }
    if refresh or missing or not skus or refreshed is None or now - refreshed > SKU_MAX_AGE:
        skus = GraphTranslator().skus(await svc.directory.subscribed_skus())
        state.save_skus(skus.values(), now)
        not_listed.update(dict.fromkeys(missing - skus.keys(), now))
        return skus, now
    return skus, refreshed


@dataclass(frozen=True, slots=True)
class UsersRead:
    """`read_users`' tenant and when its parts were read from Graph."""

    tenant: Tenant
    read_at: datetime
    """When Graph was asked for the users (their memberships were read after)."""
    skus_read_at: datetime
    """When the SKU counts were read, at the latest (`skus_for`)."""


async def read_users(svc: Services, user_ids: Sequence[str]) -> UsersRead:
    """The users Graph knows (batched) as a small tenant: their memberships, the cached licensed
    groups and SKUs (refreshed when a user or group names one the cache does not know)."""
    translate = GraphTranslator()
    read_at = svc.now()
    users = translate.users((await svc.directory.users_by_id(user_ids)).values(), {})
    memberships = await svc.directory.member_of(list(users))
    groups = LicensedGroups(svc.tables.deltalinks).configs()
    skus, skus_read_at = await skus_for(svc, named=_named_skus(users.values(), groups.values()))
    unknown_groups = _groups_in_states(users.values()) - groups.keys()
    if unknown_groups:
        groups |= await svc.directory.group_configs(sorted(unknown_groups))
    members = _members_by_group(groups, users, memberships)
    tenant = Tenant(skus, core_groups(groups.values(), skus, members), users, None)
    return UsersRead(tenant, read_at, skus_read_at)


async def read_user_records(svc: Services, user_ids: Sequence[str]) -> dict[str, User]:
    """The named users Graph knows (batched), by the id or UPN asked for: unknown ones are
    absent. Their names, states and assignments, without memberships."""
    if not user_ids:
        return {}
    translate = GraphTranslator()
    found = await svc.directory.users_by_id(user_ids)
    return {
        asked: user for asked, obj in found.items() for user in translate.users([obj], {}).values()
    }


async def current_processing_states(
    svc: Services, findings: Sequence[Finding]
) -> dict[str, str | None]:
    """Re-read the processing state of the groups behind pending, stale or mismatched paths.

    The stored state is only as fresh as the last sweep or re-check, and a membership change
    queues the group for processing again: deciding on a stale "ProcessingComplete" would
    reprocess every new joiner before Entra has even looked at it. One batched read instead.
    Only the state is stored: the group's licenses are the group changes' to store, after
    they sent its members on (a license change stored here would never be seen there).
    """
    group_ids = sorted({f.group_id for f in findings if f.code in PROCESSING_GATED and f.group_id})
    if not group_ids:
        return {}
    fresh = await svc.directory.group_configs(group_ids)
    licensed = LicensedGroups(svc.tables.deltalinks)
    for group_id, config in fresh.items():
        # over the row as it is at the write (the group changes may have stored licenses
        # since): a configuration read before it and written back would undo them
        licensed.save_processing_state(group_id, config.processing_state)
    return {g: config.processing_state for g, config in fresh.items()}


class PartitionsReadOnce:
    """An entity store that reads each partition once until it writes to it: the reprocess
    ledger's history, seats in flight and unsent causes of a user come from one query."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table
        self._partitions: dict[str, list[Entity]] = {}

    @property
    def name(self) -> str:
        return self._table.name

    def query(self, pk: str) -> list[Entity]:
        if pk not in self._partitions:
            self._partitions[pk] = self._table.query(pk)
        return list(self._partitions[pk])

    def query_all(self) -> Iterator[Entity]:
        return self._table.query_all()

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        return self._table.query_where(field, values)

    def get(self, pk: str, rk: str) -> Entity | None:
        return self._table.get(pk, rk)

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._partitions.pop(pk, None)
        return self._table.insert(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._partitions.pop(pk, None)
        return self._table.upsert(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        self._partitions.pop(pk, None)
        return self._table.update(pk, rk, fields, etag=etag)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._partitions.pop(pk, None)
        self._table.delete(pk, rk, etag=etag)

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        self._partitions.pop(pk, None)
        self._table.write_batch(pk, upserts, deletes)


def _named_skus(users: Iterable[User], groups: Iterable[GroupConfig]) -> set[str]:
    """The SKUs the users hold and the groups assign: one bought (or assigned) since the cache
    was filled refreshes it rather than fail."""
    held = (state.sku_id for user in users for state in user.states)
    assigned = (lic.sku_id for g in groups for lic in g.licenses)
    return {*held, *assigned}


def _members_by_group(
    group_ids: Iterable[str], user_ids: Iterable[str], memberships: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Each group's members among the users, in the users' order: one pass over what
    `member_of` returned (asking every group about every user's list was groups × users ×
    memberships, about 0.5 s for 100 users in 300 of 1,000 licensed groups)."""
    members: dict[str, list[str]] = {g: [] for g in group_ids}
    for user_id in user_ids:
        for group_id in members.keys() & set(memberships.get(user_id, ())):
            members[group_id].append(user_id)
    return members


def _groups_in_states(users: Iterable[User]) -> set[str]:
    return {
        state.assigned_by_group
        for user in users
        for state in user.states
        if state.assigned_by_group
    }
