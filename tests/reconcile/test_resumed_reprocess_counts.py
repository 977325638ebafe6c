"""A page that queued its reprocesses and died before its checkpoint is settled again on
resume: the policy then meets those reprocesses as already made. The night must still count
them as queued (not "alert instead"), call Graph for each user once, and hold their seats."""

from __future__ import annotations

import pytest

from shared.core.nightly_summary import NightlySummary
from shared.service.reconcile.run_state import ReconcileResult
from shared.service.stores.reprocess_ledger import QUEUED
from tests.demo_tenant import EMS, IRVIN, JONI
from tests.reconcile.conftest import Nightly, SmallPages
from tests.reliability.harness import SimulatedCrash
from tests.service.world import build_world

pytestmark = pytest.mark.anyio


class CrashOnceQueued:
    """Crash points that kill the run at `point` on the first page that queued a reprocess
    (the host recycled there), and nowhere else."""

    def __init__(self, nightly: Nightly, point: str) -> None:
        self.nightly, self.point, self.crashed = nightly, point, False

    def reached(self, name: str) -> None:
        ledger = self.nightly.world.svc.tables.reprocessledger.query_all()
        queued = any(e.fields.get("status") == QUEUED for e in ledger)
        if name == self.point and not self.crashed and queued:
            self.crashed = True
            raise SimulatedCrash(name)


def acting_nightly(free_ems_seats: int = 0) -> Nightly:
    nightly = Nightly(build_world(fake=SmallPages, BASELINE="off", LICENSE_GUARD_MODE="act"))
    [ems] = [s for s in nightly.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + free_ems_seats
    return nightly


async def night(nightly: Nightly) -> tuple[NightlySummary, list[str], list[tuple[str, str]]]:
    """The night run to its end, then the reprocess queue drained: the summary, the users
    Graph reprocessed and the ledger's rows (user, status)."""
    result: ReconcileResult = await nightly.run()
    await nightly.world.run_reprocess()
    assert result.summary is not None
    ledger = nightly.world.svc.tables.reprocessledger.query_all()
    rows = sorted((e.partition_key, str(e.fields.get("status"))) for e in ledger)
    return result.summary, sorted(nightly.directory.reprocessed), rows


@pytest.mark.parametrize("point", ["reconcile.after_page_findings", "reconcile.after_page_parts"])
@pytest.mark.parametrize("carried_out", [False, True], ids=["still-queued", "done-before-resume"])
@pytest.mark.parametrize("seats", [0, 2], ids=["no-seats", "seats-for-both"])
async def test_a_page_redone_after_a_crash_counts_its_reprocesses_as_queued(
    point: str, carried_out: bool, seats: int
) -> None:
    """With seats, Joni's CountViolation reprocess is among them: still queued at the resume,
    her CountViolation is in flight and not decided again, yet it was queued by this run."""
    clean_summary, clean_calls, clean_rows = await night(acting_nightly(seats))
    assert clean_summary.reprocess_outcomes["queued"] > 0

    nightly = acting_nightly(seats)
    nightly.world.svc.crash_points = CrashOnceQueued(nightly, point)
    with pytest.raises(SimulatedCrash):
        await nightly.run()
    if carried_out:  # the reprocess queue works on while the run waits for its next firing
        await nightly.world.run_reprocess()
    summary, calls, rows = await night(nightly)

    assert summary.reprocess_outcomes == clean_summary.reprocess_outcomes
    assert summary.new_findings == clean_summary.new_findings
    assert calls == clean_calls  # each reprocessed once, none lost
    assert rows == clean_rows


async def test_the_seat_a_redone_page_gave_out_is_not_given_again_on_a_later_page() -> None:
    """One free EMS seat, two users waiting for it: Joni on the first page, Irvin on the
    last. Joni's reprocess, queued before the crash and done before the resume, still holds
    the seat for the rest of the run (the SKU counts read when it started do not show it)."""
    clean_summary, clean_calls, _ = await night(acting_nightly(free_ems_seats=1))
    assert JONI in clean_calls
    assert IRVIN not in clean_calls

    nightly = acting_nightly(free_ems_seats=1)
    nightly.world.svc.crash_points = CrashOnceQueued(nightly, "reconcile.after_page_parts")
    with pytest.raises(SimulatedCrash):
        await nightly.run()
    await nightly.world.run_reprocess()
    summary, calls, _ = await night(nightly)

    assert calls == clean_calls
    assert summary.reprocess_outcomes == clean_summary.reprocess_outcomes


async def test_a_resumed_run_counts_its_own_reprocess_still_in_flight_once() -> None:
    """Two free EMS seats, Joni on the first page and Irvin on the last. The run stops after
    the page that queued Joni's reprocess (checkpointed: the seat promised) and resumes while
    that reprocess is still queued: her seat must count once, not once as promised by the run
    and again as in flight in the ledger, or Irvin is left waiting for the seat that is free."""
    clean_summary, clean_calls, _ = await night(acting_nightly(free_ems_seats=2))
    assert {JONI, IRVIN} <= set(clean_calls)

    nightly = acting_nightly(free_ems_seats=2)
    nightly.world.svc.crash_points = CrashOnceQueued(nightly, "reconcile.after_page_checkpoint")
    with pytest.raises(SimulatedCrash):
        await nightly.run()
    summary, calls, _ = await night(nightly)  # Joni's reprocess still queued at the resume

    assert calls == clean_calls
    assert summary.reprocess_outcomes == clean_summary.reprocess_outcomes
