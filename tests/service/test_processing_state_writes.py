"""The user pipeline stores the groups' fresh processing states (`current_processing_states`)
over their rows as they are when it writes: licenses the group changes stored meanwhile (another
worker, between this one's read and its write) are kept, not overwritten by an older read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from shared.core.findings import INFO, STALE_GROUP_ASSIGNMENT, Finding
from shared.core.model import LicenseAssignment
from shared.fakes.tables import InMemoryTable
from shared.ports.messages import DeltaSweep
from shared.ports.tables import Entity
from shared.service.groups import handle_group_changes
from shared.service.stores import LicensedGroups
from shared.service.stores.licensed_groups import GROUP_PK
from shared.service.user_reads import current_processing_states
from tests.demo_tenant import E3_TEAMS, ENTERPRISEPACK
from tests.service.world import World

pytestmark = pytest.mark.anyio

NEW_LICENSES = (LicenseAssignment(ENTERPRISEPACK, frozenset()),)


@dataclass
class WrittenAfterRead(InMemoryTable):
    """The `deltalinks` table where another worker writes once, just after this one read a
    group row (by key or the whole partition)."""

    meanwhile: Callable[[InMemoryTable], None] | None = None

    def _then(self) -> None:
        write, self.meanwhile = self.meanwhile, None
        if write is not None:
            write(self)

    def get(self, pk: str, rk: str) -> Entity | None:
        found = super().get(pk, rk)
        if pk == GROUP_PK:
            self._then()
        return found

    def query(self, pk: str) -> list[Entity]:
        found = super().query(pk)
        if pk == GROUP_PK:
            self._then()
        return found


def stale(group_id: str) -> Finding:
    return Finding(STALE_GROUP_ASSIGNMENT, INFO, "user:u", None, group_id, "m", "r")


async def test_licenses_stored_meanwhile_survive_the_processing_state_write(
    world: World,
) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="c"))
    table = WrittenAfterRead("deltalinks")
    for row in world.svc.tables.deltalinks.query_all():
        table.upsert(row.partition_key, row.row_key, row.fields)
    world.svc.tables = replace(world.svc.tables, deltalinks=table)
    world.directory.groups[E3_TEAMS]["licenseProcessingState"] = {"state": "QueuedForProcessing"}

    def group_changes_store_licenses(inner: InMemoryTable) -> None:
        licensed = LicensedGroups(inner)
        licensed.save_config(replace(licensed.configs()[E3_TEAMS], licenses=NEW_LICENSES))

    table.meanwhile = group_changes_store_licenses
    states = await current_processing_states(world.svc, [stale(E3_TEAMS)])

    assert table.meanwhile is None  # the other worker did write in between
    assert states == {E3_TEAMS: "QueuedForProcessing"}
    stored = LicensedGroups(table).configs()[E3_TEAMS]
    assert (stored.licenses, stored.processing_state) == (NEW_LICENSES, "QueuedForProcessing")


async def test_a_group_forgotten_meanwhile_is_not_stored_again(world: World) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="c"))
    LicensedGroups(world.svc.tables.deltalinks).forget_group(E3_TEAMS)

    states = await current_processing_states(world.svc, [stale(E3_TEAMS)])

    assert E3_TEAMS in states
    assert world.svc.tables.deltalinks.get(GROUP_PK, E3_TEAMS) is None
