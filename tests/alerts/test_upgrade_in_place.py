"""Alerts over state the version before (a3824d1, the end of 2026-12-02) left behind: a new
version deployed while the app works reads it and loses no alert."""

from __future__ import annotations

import pytest

from shared.ports.tables import EntityStore
from shared.service.alerts.digest import run_digest
from tests.alerts.mail import header, html, mails
from tests.alerts.world import GRACE_SECONDS, error, record, world_with_findings
from tests.demo_tenant import IRVIN, JONI
from tests.service.world import World
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio

NEWER_FIELDS = {
    "servicestate": ("pendingRows", "abandonedIds"),  # aff8c15, 04a1745
}
"""Fields a3824d1 never wrote, by table."""


def as_a3824d1_wrote_it(world: World) -> None:
    """Every row of the world's tables without the fields a3824d1 never wrote."""
    for name, dropped in NEWER_FIELDS.items():
        table: EntityStore = getattr(world.svc.tables, name)
        for entity in list(table.query_all()):
            if any(f in entity.fields for f in dropped):
                fields = {k: v for k, v in entity.fields.items() if k not in dropped}
                table.upsert(entity.partition_key, entity.row_key, fields)


async def test_a_digest_left_pending_by_the_old_version_does_not_stand_for_newer_findings() -> None:
    """a3824d1 kept a failed digest's `pendingId` and `pendingDraftId` only (no `pendingRows`:
    aff8c15 added it). After the upgrade the retry, which also has a newer finding, must not
    send the old draft (Irvin alone) and mark Joni's finding as mailed."""
    world = await world_with_findings(error(IRVIN))
    world.directory.fail_next_send_mail(403)
    failed = await run_digest(world.svc, sleep=Sleeps())
    as_a3824d1_wrote_it(world)
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    later = await run_digest(world.svc, sleep=Sleeps())
    [joni] = world.svc.tables.findings.query(JONI)
    [mail] = [m for m in mails(world) if header(m) == joni.fields["alertedIn"]]

    assert (failed.status, later.status) == ("failed", "sent")
    assert "Joni" in html(mail)
