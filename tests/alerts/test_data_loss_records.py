"""The data-loss guard's capability records over time: a loss past its kept period is not found
again from the same stale license; a deleted user's record is cleaned up, keeping a loss still
open for a user restored within its period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.ports.tables import json_field, parse_json_field
from shared.service.dataloss import CAPABILITIES_PK
from shared.service.stores import FindingsLedger
from tests.alerts.mail import mails
from tests.alerts.test_immediate import (
    leave_the_mailbox_group,
    recompute,
    sales,
    with_mailbox_group,
)
from tests.alerts.world import alert_world
from tests.service.world import World

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1).total_seconds()


def data_loss_mails(world: World) -> list[str]:
    return [m["subject"] for m in mails(world) if "data-loss" in m["subject"]]


def open_risks(world: World) -> list[object]:
    return FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])


async def test_an_expired_loss_is_not_found_again_while_graph_shows_the_stale_license() -> None:
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)  # Entra never processes the removal
    assert len(data_loss_mails(world)) == 1
    assert len(open_risks(world)) == 1

    world.clock.advance(94 * DAY)  # the mailbox's 30 days and the OneDrive's 93 are up
    await recompute(world, [user])
    assert open_risks(world) == []
    world.clock.advance(3600)
    await recompute(world, [user])  # the same stale license, no new evidence
    world.clock.advance(31 * DAY)
    await recompute(world, [user])

    assert open_risks(world) == []
    assert len(data_loss_mails(world)) == 1


async def test_an_expired_mailbox_loss_is_not_found_again_beside_an_open_onedrive_loss() -> None:
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    world.clock.advance(31 * DAY)  # the mailbox's loss is over, the OneDrive's still open
    await recompute(world, [user])
    world.clock.advance(3600)
    await recompute(world, [user])

    assert len(open_risks(world)) == 1  # the OneDrive's
    assert len(data_loss_mails(world)) == 1


async def test_an_expired_loss_ends_once_graph_stops_showing_the_license() -> None:
    """Once Entra processes the removal the stale evidence is gone: the record is dropped
    (nothing held, nothing lost), and a later grant is a first one, no loss."""
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    world.clock.advance(94 * DAY)
    await recompute(world, [user])
    world.directory.users[user]["assignedLicenses"] = []
    world.directory.users[user]["licenseAssignmentStates"] = []
    await recompute(world, [user])

    assert world.svc.tables.servicestate.get(CAPABILITIES_PK, user) is None
    assert len(data_loss_mails(world)) == 1


def record(world: World, user: str) -> dict[str, Any] | None:
    stored = world.svc.tables.servicestate.get(CAPABILITIES_PK, user)
    return parse_json_field(str(stored.fields["json"])) if stored else None


async def test_a_deleted_users_capability_record_is_removed() -> None:
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])
    assert record(world, user)  # the mailbox and OneDrive held
    del world.directory.users[user]

    await recompute(world, [user])

    assert record(world, user) is None


async def test_a_deleted_users_open_loss_is_kept_for_a_restore_within_its_period() -> None:
    """Deleted: the findings resolve, what was held is dropped, the open loss stays. Restored
    10 days on (without the license): the same loss is found again, its deadline unchanged."""
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    before = record(world, user)
    assert before
    assert before["lost"]
    deleted = world.directory.users.pop(user)

    await recompute(world, [user])

    assert open_risks(world) == []
    after = record(world, user)
    assert after is not None
    assert after["held"] == {}
    assert after["lost"] == before["lost"]
    world.clock.advance(10 * DAY)
    world.directory.users[user] = deleted | {"assignedLicenses": [], "licenseAssignmentStates": []}
    await recompute(world, [user])
    assert len(open_risks(world)) == 1
    restored = record(world, user)
    assert restored is not None
    assert restored["lost"] == before["lost"]
    assert "gone" not in restored


async def test_an_empty_record_an_earlier_version_left_is_deleted() -> None:
    """Before, a loss whose time was up left `{"held": {}, "lost": {}}` behind for good."""
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    world.directory.users[user] |= {"assignedLicenses": [], "licenseAssignmentStates": []}
    world.svc.tables.servicestate.insert(
        CAPABILITIES_PK, user, {"json": json_field({"held": {}, "lost": {}})}
    )

    await recompute(world, [user])

    assert record(world, user) is None
