"""A user whose DataLossRisk finding is open (one capability lost, already alerted) then loses
another capability: that loss has its own deadline and is alerted too, once. The finding is
one per user, so it is not new: it used to be marked alerted and the mailbox loss never
mailed (the digest skips an alerted finding too)."""

from __future__ import annotations

import copy

import pytest

from shared.ports.directory import GroupConfig
from shared.service.alerts.digest import run_digest
from shared.service.dataloss import alert_data_loss_owed
from shared.service.stores import LicensedGroups
from tests.alerts.mail import html, mails
from tests.alerts.test_immediate import MAILBOX_GROUP, recompute, sales, with_mailbox_group
from tests.alerts.world import alert_world, baseline
from tests.demo_tenant import ENTERPRISEPACK
from tests.service.world import World

pytestmark = pytest.mark.anyio
SHAREPOINT_E3 = "5dbe027f-2339-4123-9542-606e4d348a72"  # SHAREPOINTENTERPRISE (OneDrive)


async def onedrive_lost_and_alerted() -> tuple[World, str]:
    """One Sales user whose group's E3 drops SharePoint (the OneDrive): alerted at once."""
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])
    world.directory.set_group_licenses(
        MAILBOX_GROUP, [{"skuId": ENTERPRISEPACK, "disabledPlans": [SHAREPOINT_E3]}]
    )
    group = copy.deepcopy(world.directory.groups[MAILBOX_GROUP])
    LicensedGroups(world.svc.tables.deltalinks).save_config(GroupConfig.from_graph(group))
    state = {"skuId": ENTERPRISEPACK, "assignedByGroup": MAILBOX_GROUP, "state": "Active"}
    world.directory.set_user_state(  # Entra applied it
        user,
        licenseAssignmentStates=[{**state, "disabledPlans": [SHAREPOINT_E3], "error": "None"}],
    )
    await recompute(world, [user])
    [first] = mails(world)
    assert "OneDrive" in html(first)
    assert "Exchange Online mailbox" not in html(first)
    world.clock.advance(3 * 3600)
    return world, user


async def test_a_mailbox_lost_after_the_onedrive_is_alerted_at_once_and_once() -> None:
    world, user = await onedrive_lost_and_alerted()
    world.directory.remove_member(MAILBOX_GROUP, user)

    await recompute(world, [user])  # now the mailbox too
    world.clock.advance(60)
    await recompute(world, [user])  # a redelivery: nothing new
    await alert_data_loss_owed(world.svc)  # the tenant-alerts timer: nothing owed

    later = mails(world)[1:]
    assert [m["subject"] for m in later] == [
        "License Guard · Contoso: data-loss risk for 1 user(s)"
    ]
    assert "Exchange Online mailbox" in html(later[0])
    assert "restore it by 2026-12-24 12:00 UTC" in html(later[0])


async def test_a_later_loss_graph_refused_to_mail_is_sent_by_the_tenant_alerts_run() -> None:
    world, user = await onedrive_lost_and_alerted()
    world.directory.remove_member(MAILBOX_GROUP, user)
    for _ in range(3):
        world.directory.fail_next_send_mail(429, retry_after=1)
    await recompute(world, [user])
    assert len(mails(world)) == 1
    world.clock.advance(30 * 60)

    await alert_data_loss_owed(world.svc)
    await alert_data_loss_owed(world.svc)

    later = mails(world)[1:]
    assert len(later) == 1
    assert "Exchange Online mailbox" in html(later[0])


async def test_a_later_loss_no_alert_carried_within_the_hour_goes_to_the_digest() -> None:
    """Graph refuses mail for two hours: the immediate alert and its retries fail, and an
    older loss is the digest's; the finding was marked alerted for the OneDrive, so the digest
    skipped it and the mailbox loss was never mailed."""
    world, user = await onedrive_lost_and_alerted()
    await baseline(world)  # (drops the mails sent so far)
    world.directory.remove_member(MAILBOX_GROUP, user)
    for _ in range(3):  # the alert at once, and the two retries within the hour
        world.directory.fail_next_send_mail(403)
    await recompute(world, [user])
    for _ in range(4):  # the tenant-alerts timer, every 30 minutes
        world.clock.advance(30 * 60)
        await alert_data_loss_owed(world.svc)
    assert mails(world) == []

    await run_digest(world.svc)

    [digest] = mails(world)
    assert "Exchange Online mailbox" in html(digest)
