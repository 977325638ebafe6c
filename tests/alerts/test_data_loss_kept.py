"""How long a recorded loss keeps its `DataLossRisk` finding open: a mailbox's 30 days (the
data is deleted then), a OneDrive's 93 (unlicensed OneDrive accounts are archived then; it is
not deleted at 30 days). The OneDrive's finding used to resolve at 30 days like the mailbox's,
reported "resolved" two months before anything happens to the files."""

from __future__ import annotations

import copy

import pytest

from shared.ports.directory import GroupConfig
from shared.service.stores import FindingsLedger, LicensedGroups
from tests.alerts.mail import html, mails
from tests.alerts.test_data_loss_later_capability import SHAREPOINT_E3, onedrive_lost_and_alerted
from tests.alerts.test_immediate import (
    MAILBOX_GROUP,
    leave_the_mailbox_group,
    recompute,
    sales,
    with_mailbox_group,
)
from tests.alerts.world import alert_world
from tests.demo_tenant import ENTERPRISEPACK

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


async def test_a_mass_onedrive_loss_does_not_say_the_files_go_in_30_days() -> None:
    """SharePoint disabled in a group's E3 for 12 users: the mass-loss mail said 'data tied to
    a removed license is deleted 30 days after the change', wrong for a OneDrive."""
    world = alert_world(with_mailbox_group(12))
    users = sales(world)
    await recompute(world, users)
    world.directory.set_group_licenses(
        MAILBOX_GROUP, [{"skuId": ENTERPRISEPACK, "disabledPlans": [SHAREPOINT_E3]}]
    )
    group = copy.deepcopy(world.directory.groups[MAILBOX_GROUP])
    LicensedGroups(world.svc.tables.deltalinks).save_config(GroupConfig.from_graph(group))

    await recompute(world, users)

    [mail] = mails(world)
    body = html(mail)
    assert "mass data-loss risk: 12 users" in mail["subject"]
    assert "data tied to a removed license is deleted" not in body
    assert "an unlicensed OneDrive is archived 93 days after" in body
