"""The dry run leaves what a later read recorded, as the run does: its users count as read when
it began (the run's read time), and a user's rows written from a later read stand
(docs/reliability.md, "An older read never replaces a newer one")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.messages import RecomputeUsers
from shared.ports.tables import Entity
from shared.service.users import recompute_users
from tests.demo_tenant import E3_BASE, NESTOR
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio


class RecomputedBeforeTheLedgerIsRead(InMemoryTable):
    """The findings table; `meanwhile` runs once, right before the table is next read whole
    (the dry run's snapshot of the ledger, once the dry run began)."""

    meanwhile: Callable[[], object] | None = None

    def query_all(self) -> Iterator[Entity]:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().query_all()


def on_another_instance(nightly: Nightly) -> None:
    """A recompute of Nestor on another instance reads him (still in E3 Base: his
    UniquenessViolation found again) a minute after the dry run began; then he leaves."""
    world = nightly.world
    world.clock.advance(60)
    msg = RecomputeUsers(user_ids=(NESTOR,), reason="test", correlation_id="later read")
    with ThreadPoolExecutor(1) as instance:
        instance.submit(asyncio.run, recompute_users(world.svc, msg)).result()
    world.directory.remove_member(E3_BASE, NESTOR)


async def test_a_dry_run_does_not_resolve_what_a_later_read_recorded(nightly: Nightly) -> None:
    """The dry run reported it would resolve Nestor's UniquenessViolation (and open what it
    found after he left), where the run, whose users count as read before the recompute read
    him, writes nothing for him: his rows stand as that later read wrote them. (What it would
    reprocess is decided as before: read times guard the findings ledger only.)"""
    findings = RecomputedBeforeTheLedgerIsRead("findings")
    nightly.world.svc.tables = replace(nightly.world.svc.tables, findings=findings)
    await nightly.run()
    findings.meanwhile = lambda: on_another_instance(nightly)

    result = await nightly.run(dry_run=True, force=True)

    assert findings.meanwhile is None  # the recompute did run in between
    findings_of_nestor = [
        line
        for line in result.planned
        if line.startswith(("new finding", "resolve finding")) and "Nestor Wilke" in line
    ]
    assert findings_of_nestor == []
    assert result.resolved_findings == 0
