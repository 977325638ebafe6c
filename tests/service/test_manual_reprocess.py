"""`license-guard reprocess` at the service layer: the admin's reprocess goes through the
reprocess ledger like the service's own, and leaves no row for a recompute to resend."""

from __future__ import annotations

import pytest

from shared.core import findings as codes
from shared.ports.messages import RecomputeUsers
from shared.ports.queues import REPROCESS_USER
from shared.service.manual_reprocess import CALLED, QUEUED, manual_reprocess
from shared.service.stores import ReprocessLedger
from shared.service.users import recompute_users
from tests.demo_tenant import DIEGO, E3_BASE
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


async def test_a_group_that_lost_its_licenses_no_longer_assigns_in_the_admin_reprocess(
    world: World,
) -> None:
    """The scan reads only licensed groups; a stale state from a group that dropped its
    licenses must read as the nightly and the user pipeline say it, not 'no longer exists'."""
    world.directory.set_group_licenses(E3_BASE, [])  # Diego's state from it stays

    [outcome] = await manual_reprocess(world.svc, [DIEGO], dry_run=True)

    [stale] = [f for f in outcome.findings if f.code == codes.STALE_GROUP_ASSIGNMENT]
    assert "no longer exists" not in stale.message
    assert "no longer assigns Office 365 E3" in stale.message


PRADEEP = "56e897a1-eec7-52ab-b03e-313c4c4ff925"  # ProhibitedInUsageLocationViolation (CU)


async def test_the_service_does_not_repeat_an_admin_reprocess_of_an_unchanged_cause(
    act_world: World,
) -> None:
    """The admin reprocessed Pradeep without correcting his usage location: Entra fails the
    same way, and the service must not call again as if the evidence had changed."""
    [outcome] = await manual_reprocess(act_world.svc, [PRADEEP])
    assert outcome.status == CALLED

    for _ in range(3):
        act_world.clock.advance(3600)
        again = await recompute_users(
            act_world.svc, RecomputeUsers(user_ids=(PRADEEP,), reason="t", correlation_id="r")
        )
        assert again.queued == []
        assert act_world.messages(REPROCESS_USER) == []
    assert act_world.directory.reprocessed == [PRADEEP]
