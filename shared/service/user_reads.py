"""The user pipeline's reads: users from Graph as the core's tenant, the SKU cache, the groups'
fresh processing states, and the reprocess ledger read once per user.

For at most 100 users at a time: their states and memberships come from Graph (batched), the
licensed groups' configuration and the SKUs from the service's cache (SKUs refreshed when
older than `SKU_MAX_AGE`, or when a user holds one the cache does not know). The adapter's
translator turns Graph's objects into the core's model; nothing here re-parses a document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta

from shared.adapters.snapshot import GraphTranslator
from shared.core.findings import Finding
from shared.core.graph_values import processing_state
from shared.core.model import Tenant
from shared.core.reprocess import PROCESSING_GATED
from shared.ports.directory import JSON
from shared.ports.tables import Entity, EntityStore, EntityValue
from shared.service.services import Services
from shared.service.stores import LicensedGroups, ServiceState

SKU_MAX_AGE = timedelta(hours=1)


async def skus_for(svc: Services, *, refresh: bool = False) -> list[JSON]:
    """Subscribed SKUs from the cache, refreshed from Graph when stale or asked."""
    state = ServiceState(svc.tables.servicestate)
    skus, refreshed = state.skus()
    if refresh or not skus or refreshed is None or svc.now() - refreshed > SKU_MAX_AGE:
        skus = await svc.directory.subscribed_skus()
        state.save_skus(skus, svc.now())
    return skus


async def read_users(svc: Services, user_ids: Sequence[str]) -> Tenant:
    """The users Graph knows (batched) as a small tenant: their memberships, the cached licensed
    groups and SKUs (refreshed when a user or group names one the cache does not know)."""
    users = await svc.directory.users_by_id(user_ids)
    memberships = await svc.directory.member_of(list(users))
    groups = LicensedGroups(svc.tables.deltalinks).groups()
    skus = await skus_for(svc)
    if _unknown_skus(users, groups, skus):
        skus = await skus_for(svc, refresh=True)
    unknown_groups = _groups_in_states(users) - groups.keys()
    if unknown_groups:
        groups |= await svc.directory.groups_by_id(sorted(unknown_groups))
    members = {g: [u for u in users if g in memberships.get(u, ())] for g in groups}
    translate = GraphTranslator()
    sku_values = translate.skus(skus)
    user_values = translate.users(users.values(), sku_values)
    group_values = translate.groups(groups.values(), sku_values, members)
    return Tenant(sku_values, group_values, user_values, None)


async def current_processing_states(
    svc: Services, findings: Sequence[Finding]
) -> dict[str, str | None]:
    """Re-read the processing state of the groups behind pending, stale or mismatched paths.

    The stored state is only as fresh as the last sweep or re-check, and a membership change
    queues the group for processing again: deciding on a stale "ProcessingComplete" would
    reprocess every new joiner before Entra has even looked at it. One batched read instead.
    """
    group_ids = sorted({f.group_id for f in findings if f.code in PROCESSING_GATED and f.group_id})
    if not group_ids:
        return {}
    fresh = await svc.directory.groups_by_id(group_ids)
    licensed = LicensedGroups(svc.tables.deltalinks)
    for group in fresh.values():
        if group.get("assignedLicenses"):
            licensed.save_group(group)
    return {g: processing_state(group.get("licenseProcessingState")) for g, group in fresh.items()}


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


def _unknown_skus(users: dict[str, JSON], groups: dict[str, JSON], skus: list[JSON]) -> bool:
    """A SKU bought (or assigned) since the cache was filled: refresh rather than fail."""
    known = {s["skuId"] for s in skus}
    held = (
        state.get("skuId")
        for user in users.values()
        for state in user.get("licenseAssignmentStates") or ()
    )
    assigned = (
        lic.get("skuId") for g in groups.values() for lic in g.get("assignedLicenses") or ()
    )
    return any(sku_id not in known for sku_id in (*held, *assigned))


def _groups_in_states(users: dict[str, JSON]) -> set[str]:
    return {
        state["assignedByGroup"]
        for user in users.values()
        for state in user.get("licenseAssignmentStates") or ()
        if state.get("assignedByGroup")
    }
