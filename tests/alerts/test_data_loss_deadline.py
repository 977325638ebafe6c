"""The mailbox deadline said 'restore it by <seen + 30 days>' also when the loss was seen
after Entra had applied the change (Graph no longer showed the mailbox; only the record of an
earlier read did): the 30 days had begun before, by as long as the change went unseen (a
missed notification: until the nightly scan), so that date could be up to a day late."""

from __future__ import annotations

import pytest

from tests.alerts.mail import html, mails
from tests.alerts.test_immediate import (
    ADMIN,
    MAILBOX_GROUP,
    leave_the_mailbox_group,
    recompute,
    sales,
    with_mailbox_group,
)
from tests.alerts.world import alert_world

pytestmark = pytest.mark.anyio


async def test_a_loss_seen_before_entra_applied_it_gives_seen_plus_30_days() -> None:
    world = alert_world(with_mailbox_group(1))
    await leave_the_mailbox_group(world)  # Graph still shows the group's E3

    [mail] = mails(world)
    body = html(mail)
    assert "restore it by 2026-12-24 09:00 UTC (the loss was seen 2026-11-24 09:00 UTC)" in body
    assert "well before" not in body


async def test_a_loss_seen_after_entra_applied_it_says_the_30_days_began_earlier() -> None:
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])
    world.directory.remove_member(MAILBOX_GROUP, user, actor=ADMIN)
    world.directory.set_user_state(user, licenseAssignmentStates=[], assignedLicenses=[])
    world.clock.advance(20 * 3600)  # the notification was lost: the nightly scan sees it

    await recompute(world, [user])

    [mail] = mails(world)
    body = html(mail)
    assert "restore it by" not in body
    assert "restore it well before 2026-12-25 05:00 UTC" in body
    assert "the 30 days started earlier" in body
    assert "Change user license" in body
