"""The nightly summary's counts agree with the ledger the night leaves behind."""

from __future__ import annotations

import pytest

from shared.core.dataloss import DATA_LOSS_RISK
from shared.service.stores import FindingsLedger
from tests.demo_tenant import EMS, EMS_E3, ENTERPRISEPACK
from tests.reconcile.conftest import Nightly, mailbox_lost_after_a_baseline

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


async def test_the_summary_counts_the_data_loss_risks_the_night_left_open() -> None:
    nightly = await mailbox_lost_after_a_baseline()

    result = await nightly.run()

    at_risk = FindingsLedger(nightly.world.svc.tables.findings).open_by_code([DATA_LOSS_RISK])
    assert len(at_risk) == 2  # Alannah tonight, Alex (the demo's stale E3 path) since the baseline
    assert result.summary is not None
    assert result.summary.data_loss_risks == 2
    [mail] = [m for m in nightly.directory.sent_mail if "nightly summary" in str(m)]
    assert "Data-loss risks: 2 users" in str(mail)


async def test_the_top_groups_count_users_in_error_not_their_errors(nightly: Nightly) -> None:
    """A user whose two products from one group both fail is one user in error there."""
    pradeep = "56e897a1-eec7-52ab-b03e-313c4c4ff925"  # EMS from EMS_E3: usage location
    nightly.directory.set_group_licenses(
        EMS_E3,
        [{"skuId": EMS, "disabledPlans": []}, {"skuId": ENTERPRISEPACK, "disabledPlans": []}],
    )
    failed = {"assignedByGroup": EMS_E3, "disabledPlans": [], "state": "Error"}
    nightly.directory.set_user_state(
        pradeep,
        licenseAssignmentStates=[
            {**failed, "skuId": sku, "error": "ProhibitedInUsageLocationViolation"}
            for sku in (EMS, ENTERPRISEPACK)
        ],
    )

    result = await nightly.run()

    assert result.summary is not None
    [ems_group] = [g for g in result.summary.top_groups_by_errors if g.group_id == EMS_E3]
    assert ems_group.errors == 3  # Irvin and Joni (no seats), Pradeep (usage location)


async def test_the_seat_forecast_counts_only_users_a_seat_would_license(nightly: Nightly) -> None:
    """EMS: five holders and two users waiting for a seat (Irvin, Joni); Pradeep's EMS fails
    for his usage location, which a bought seat would not fix."""
    result = await nightly.run()

    assert result.summary is not None
    [ems] = [s for s in result.summary.seat_forecast if s.sku_id == EMS]
    assert (ems.demand, ems.prepaid_enabled, ems.shortfall) == (7, 5, 2)
