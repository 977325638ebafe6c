"""A user the guard first reads in the middle of a group swap: Graph still shows the mailbox
from the old group (Entra has not processed the removal), the new group's license is pending.
The mailbox is held; when the new group's license then fails (no seat) and the old one is
processed away, that is a loss. It used to be recorded as held only once Graph showed the
*new* path, so nothing was recorded and the loss went unseen."""

from __future__ import annotations

import copy

import pytest

from shared.ports.directory import GroupConfig
from shared.service.stores import FindingsLedger, LicensedGroups
from tests.alerts.mail import html, mails
from tests.alerts.test_immediate import (
    ADMIN,
    MAILBOX_GROUP,
    NEW_GROUP,
    NO_SEAT,
    recompute,
    sales,
    with_a_second_mailbox_group,
    with_mailbox_group,
)
from tests.alerts.world import alert_world
from tests.demo_tenant import ENTERPRISEPACK
from tests.service.world import World

pytestmark = pytest.mark.anyio


async def test_a_swap_first_seen_pending_that_then_fails_is_a_data_loss() -> None:
    world = with_a_second_mailbox_group()
    [user] = sales(world)
    world.directory.add_member(NEW_GROUP, user, actor=ADMIN)
    world.directory.remove_member(MAILBOX_GROUP, user, actor=ADMIN)
    await recompute(world, [user])  # the old state still shown, the new one pending
    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"]) == []
    world.clock.advance(600)
    world.directory.set_user_state(user, licenseAssignmentStates=[NO_SEAT], assignedLicenses=[])

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])
    [mail] = mails(world)
    assert "Exchange Online mailbox" in html(mail)
    assert "Mailbox_Sales" in html(mail)


async def test_a_swap_first_seen_pending_that_then_succeeds_is_no_loss() -> None:
    world = with_a_second_mailbox_group()
    [user] = sales(world)
    world.directory.add_member(NEW_GROUP, user, actor=ADMIN)
    world.directory.remove_member(MAILBOX_GROUP, user, actor=ADMIN)
    await recompute(world, [user])
    world.clock.advance(600)
    active = {**NO_SEAT, "state": "Active", "error": "None"}
    world.directory.set_user_state(user, licenseAssignmentStates=[active])

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"]) == []
    assert mails(world) == []


EXCHANGE_E3 = "efb87545-963c-4e0d-99df-69c6916d9eb0"  # EXCHANGE_S_ENTERPRISE


def set_group_plans(world: World, disabled: list[str]) -> None:
    """Mailbox_Sales's E3 with `disabled` plans, as Graph and the service's cache show it."""
    world.directory.set_group_licenses(
        MAILBOX_GROUP, [{"skuId": ENTERPRISEPACK, "disabledPlans": disabled}]
    )
    group = copy.deepcopy(world.directory.groups[MAILBOX_GROUP])
    LicensedGroups(world.svc.tables.deltalinks).save_config(GroupConfig.from_graph(group))


def processed(world: World, user: str, disabled: list[str]) -> None:
    """Entra has applied the group's `disabled` plans to the user."""
    state = {"skuId": ENTERPRISEPACK, "assignedByGroup": MAILBOX_GROUP, "state": "Active"}
    world.directory.set_user_state(
        user, licenseAssignmentStates=[{**state, "disabledPlans": disabled, "error": "None"}]
    )


async def test_a_plan_re_enabled_ends_the_loss_once_entra_applied_it_not_before() -> None:
    """Exchange disabled in the group's E3 (processed: the mailbox is gone), then enabled
    again: until Entra applies that, the user has no mailbox, and if it fails the first
    deadline stands, so the finding stays open until Graph shows the plan."""
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])
    set_group_plans(world, [EXCHANGE_E3])
    processed(world, user, [EXCHANGE_E3])
    await recompute(world, [user])
    ledger = FindingsLedger(world.svc.tables.findings)
    assert ledger.open_by_code(["DataLossRisk"])
    world.clock.advance(600)

    set_group_plans(world, [])
    await recompute(world, [user])  # Graph still shows Exchange disabled
    assert ledger.open_by_code(["DataLossRisk"])

    processed(world, user, [])
    await recompute(world, [user])
    assert ledger.open_by_code(["DataLossRisk"]) == []


async def test_a_swap_whose_new_group_fails_later_names_the_group_that_held_the_mailbox() -> None:
    """A1 -> A3, read in two steps: first Entra has removed the old group's license and the new
    group's is pending, then the new one fails (no seat). The record of what was held took the
    pending path as held, so the finding said the mailbox came from the new group and to 'add
    the user back' to it, the group the user is in and that has no seat."""
    world = with_a_second_mailbox_group()
    [user] = sales(world)
    await recompute(world, [user])
    world.directory.add_member(NEW_GROUP, user, actor=ADMIN)
    world.directory.remove_member(MAILBOX_GROUP, user, actor=ADMIN)
    world.directory.set_user_state(user, licenseAssignmentStates=[], assignedLicenses=[])
    await recompute(world, [user])  # the old path gone, the new one pending: no loss yet
    assert mails(world) == []
    world.clock.advance(600)
    world.directory.set_user_state(user, licenseAssignmentStates=[NO_SEAT])

    await recompute(world, [user])

    [finding] = FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])
    assert "via 'Mailbox_Sales'" in finding.fields["message"]
    assert "Mailbox_Sales_New" not in finding.fields["message"]
    assert "add the user back to 'Mailbox_Sales'" in finding.fields["remedy"]
