"""A finish resumed after a crash reports the night's configuration drift, not none: the drift
is against the night before, not against the snapshot the crashed attempt already kept."""

from __future__ import annotations

import pytest

from tests.demo_tenant import E3_BASE, EMS, ENTERPRISEPACK
from tests.reconcile.conftest import Nightly, SmallPages, crashed_at
from tests.service.world import build_world

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


@pytest.mark.parametrize("point", ["reconcile.after_reports", "reconcile.after_summary_sent"])
async def test_a_resumed_finish_reports_the_nights_drift(point: str) -> None:
    nightly = Nightly(build_world(fake=SmallPages))
    await nightly.run()
    nightly.world.clock.advance(DAY)
    nightly.directory.set_group_licenses(
        E3_BASE,
        [{"skuId": ENTERPRISEPACK, "disabledPlans": []}, {"skuId": EMS, "disabledPlans": []}],
    )
    await crashed_at(nightly, point)

    result = await nightly.run()

    assert result.resumed
    assert result.summary is not None
    assert any(d.subject == "Licensing_Office365_E3_Base" for d in result.summary.drift)
