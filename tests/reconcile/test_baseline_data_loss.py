"""The baseline records what exists and alerts nothing: its settle sends no data-loss alert.
The tenant-alerts timer (every 30 minutes) used to send one anyway while the baseline ran:
the losses its pages had noted were 'owed' (a stale assignment of a user who left a group
long ago read as a mass loss 'in the last hour' on the day of the deploy)."""

from __future__ import annotations

import pytest

from shared.ports.messages import RecomputeUsers
from shared.service.dataloss import alert_data_loss_owed
from shared.service.stores import FindingsLedger
from shared.service.users import recompute_users
from tests.alerts.mail import mails
from tests.demo_tenant import E3_BASE
from tests.reconcile.conftest import (
    Nightly,
    SmallPages,
    alerting_nightly,
    killed_after_two_pages,
    user_id,
)
from tests.service.world import build_world

pytestmark = pytest.mark.anyio
ALERTS = {"ALERT_SENDER": "megan.bowen@contoso.com", "ALERT_RECIPIENTS": "it-licensing@contoso.com"}


async def test_no_data_loss_alert_while_the_baseline_runs_nor_after_it() -> None:
    nightly = alerting_nightly()
    alannah = user_id(nightly, "Alannah Shaw")
    nightly.directory.remove_member(E3_BASE, alannah)  # Entra has not processed it
    await killed_after_two_pages(nightly)
    assert FindingsLedger(nightly.world.svc.tables.findings).open_by_code(["DataLossRisk"])

    nightly.world.clock.advance(30 * 60)
    await alert_data_loss_owed(nightly.world.svc)  # the tenant-alerts timer
    assert mails(nightly.world) == []

    result = await nightly.run()  # the baseline resumes and finishes
    assert result.baseline
    nightly.world.clock.advance(30 * 60)
    await alert_data_loss_owed(nightly.world.svc)
    assert not [m for m in mails(nightly.world) if "data-loss" in m["subject"]]


async def test_the_baseline_s_losses_do_not_count_toward_the_hour_s_mass_loss() -> None:
    """After a fresh install's baseline, the first tenant-alerts run notes data losses 'an
    earlier version owed': the baseline's, though the baseline reported them. Counted as
    losses of the last hour, one real loss next made a mass-loss alert (threshold 1)."""
    nightly = Nightly(build_world(fake=SmallPages, **ALERTS, MASS_LOSS_THRESHOLD="1"))
    alannah, diego = user_id(nightly, "Alannah Shaw"), user_id(nightly, "Diego Siciliani")
    nightly.directory.remove_member(E3_BASE, alannah)  # Entra has not processed it
    assert (await nightly.run()).baseline
    nightly.world.clock.advance(10 * 60)
    await alert_data_loss_owed(nightly.world.svc)  # the first tenant-alerts run
    nightly.directory.sent_mail.clear()  # the baseline's summary

    nightly.directory.remove_member(E3_BASE, diego)
    await recompute_users(
        nightly.world.svc, RecomputeUsers(user_ids=(diego,), reason="test", correlation_id="rc")
    )

    [mail] = mails(nightly.world)
    assert mail["subject"] == "License Guard · Contoso: data-loss risk for 1 user(s)"
