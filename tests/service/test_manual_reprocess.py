"""`license-guard reprocess` at the service layer: the admin's reprocess goes through the
reprocess ledger like the service's own, and leaves no row for a recompute to resend."""

from __future__ import annotations

import pytest

from shared.service.manual_reprocess import CALLED, QUEUED, manual_reprocess
from shared.service.stores import ReprocessLedger
from tests.service.world import World

pytestmark = pytest.mark.anyio

EMS_GROUP = "Licensing_Office365_EMS_E3"


async def test_a_manual_reprocess_marks_its_ledger_rows_sent(world: World) -> None:
    """Braked calls stay queued for the worker: a recompute must not send them again."""
    act_world = world.with_settings(LICENSE_GUARD_MODE="act", REPROCESS_RATE_PER_MIN="1")
    outcomes = await manual_reprocess(act_world.svc, group=EMS_GROUP)

    assert {o.status for o in outcomes} >= {CALLED, QUEUED}
    ledger = ReprocessLedger(act_world.svc.tables.reprocessledger)
    rows = list(act_world.svc.tables.reprocessledger.query_all())
    assert rows
    assert all(ledger.unsent(user_id) == [] for user_id in {e.partition_key for e in rows})
