"""Alerts over state the version before (a3824d1, the end of 2026-12-02) left behind: a new
version deployed while the app works reads it and loses no alert."""

from __future__ import annotations

import pytest

from shared.ports.tables import EntityStore
from shared.service.alerts.digest import run_digest
from shared.service.dataloss import RECENT_LOSSES_PK, DataLossOutcome, alert_data_loss_owed
from shared.service.earlier_losses import NOTED
from shared.service.stores import ServiceState
from tests.alerts.mail import header, html, mails
from tests.alerts.test_immediate import alert_world, leave_the_mailbox_group, with_mailbox_group
from tests.alerts.world import GRACE_SECONDS, baseline, error, record, world_with_findings
from tests.demo_tenant import IRVIN, JONI
from tests.service.world import World
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio

NEWER_FIELDS = {
    "servicestate": ("pendingRows", "abandonedIds", "readAt"),  # aff8c15, 04a1745, 2094a6f
    "findings": ("readAt",),  # 2094a6f
}
"""Fields a3824d1 never wrote, by table."""
NEWER_ROWS = {"servicestate": {(RECENT_LOSSES_PK, None), (ServiceState.META_PK, NOTED)}}
"""Rows (partition, row key; None: the whole partition) a3824d1 never wrote, by table."""


def as_a3824d1_wrote_it(world: World) -> None:
    """The world's tables without the rows and fields a3824d1 never wrote."""
    for name, dropped in NEWER_FIELDS.items():
        table: EntityStore = getattr(world.svc.tables, name)
        for entity in list(table.query_all()):
            newer = NEWER_ROWS.get(name, set())
            if {(entity.partition_key, None), (entity.partition_key, entity.row_key)} & newer:
                table.delete(entity.partition_key, entity.row_key)
            elif any(f in entity.fields for f in dropped):
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


async def owed_by_a3824d1(**settings: str) -> tuple[World, DataLossOutcome]:
    """One Sales user's loss that a3824d1 (running, its baseline done) recorded and whose
    alert Graph refused, and the tenant-alerts timer's retry of the version after, 10 minutes
    later."""
    world = alert_world(with_mailbox_group(1), **settings)
    await baseline(world)
    world.directory.fail_next_send_mail(403)
    await leave_the_mailbox_group(world)
    as_a3824d1_wrote_it(world)
    world.clock.advance(600)
    return world, await alert_data_loss_owed(world.svc, sleep=Sleeps())


async def test_a_data_loss_the_old_version_recorded_but_never_mailed_is_mailed_after_it() -> None:
    """a3824d1 recorded the loss (ledger and capability record) and its alert failed, or the
    deploy stopped the worker before it: the tenant-alerts timer retried it from the ledger.
    The version after must too, though a3824d1 kept no recent-loss row (ca80d77)."""
    world, owed = await owed_by_a3824d1()
    [mail] = mails(world)

    assert owed.delivery is not None
    assert owed.delivery.accepted
    assert "data-loss risk for 1 user(s)" in mail["subject"]
    assert "Sales Person 00" in html(mail)
    assert (await alert_data_loss_owed(world.svc, sleep=Sleeps())).delivery is None


async def test_an_owed_data_loss_of_a_user_excluded_by_upn_stays_unmailed_after_it() -> None:
    world, owed = await owed_by_a3824d1(ALERT_EXCLUDE_USERS="Sales00@Contoso.com")

    assert owed.delivery is None
    assert mails(world) == []
