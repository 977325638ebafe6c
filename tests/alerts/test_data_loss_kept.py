"""How long a recorded loss keeps its `DataLossRisk` finding open: a mailbox's 30 days (the
data is deleted then), a OneDrive's 93 (unlicensed OneDrive accounts are archived then; it is
not deleted at 30 days). The OneDrive's finding used to resolve at 30 days like the mailbox's,
reported "resolved" two months before anything happens to the files."""

from __future__ import annotations

import pytest

from shared.service.stores import FindingsLedger
from tests.alerts.test_data_loss_later_capability import onedrive_lost_and_alerted
from tests.alerts.test_immediate import leave_the_mailbox_group, recompute, with_mailbox_group
from tests.alerts.world import alert_world

pytestmark = pytest.mark.anyio
DAY = 24 * 3600


async def test_a_onedrive_loss_stays_open_past_30_days_until_93() -> None:
    world, user = await onedrive_lost_and_alerted()  # lost 3 hours ago
    ledger = FindingsLedger(world.svc.tables.findings)

    world.clock.advance(31 * DAY)
    await recompute(world, [user])
    assert ledger.open_by_code(["DataLossRisk"])

    world.clock.advance(62 * DAY)
    await recompute(world, [user])
    assert ledger.open_by_code(["DataLossRisk"]) == []


async def test_a_lost_e3_keeps_its_onedrive_risk_open_after_the_mailbox_s_30_days() -> None:
    """E3 removed: mailbox and OneDrive lost. After 30 days only the OneDrive is at risk."""
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    world.directory.set_user_state(user, licenseAssignmentStates=[], assignedLicenses=[])
    ledger = FindingsLedger(world.svc.tables.findings)

    world.clock.advance(29 * DAY)
    await recompute(world, [user])
    [finding] = ledger.open_by_code(["DataLossRisk"])
    assert "Exchange Online mailbox" in finding.fields["message"]

    world.clock.advance(2 * DAY)
    await recompute(world, [user])
    [finding] = ledger.open_by_code(["DataLossRisk"])
    assert "Exchange Online mailbox" not in finding.fields["message"]
    assert "OneDrive/SharePoint storage" in finding.fields["message"]

    world.clock.advance(63 * DAY)
    await recompute(world, [user])
    assert ledger.open_by_code(["DataLossRisk"]) == []
