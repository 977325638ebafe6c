"""The delayed-retry records (`servicestate` partition `retry`, one row per waiting user) are
pruned by the nightly finish once their retry is long past due: they served only to keep a
second chain from starting while the retry was still to come."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.service.stores.pending_retries import RETRY_PK
from tests.demo_tenant import ADELE, E3_BASE
from tests.reconcile.conftest import Nightly, SmallPages
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


def retry_rows(nightly: Nightly) -> dict[str, datetime]:
    rows = nightly.world.svc.tables.servicestate.query(RETRY_PK)
    return {e.row_key: e.fields["dueAt"] for e in rows if isinstance(e.fields["dueAt"], datetime)}


def processing_e3_base() -> Nightly:
    """An act-mode nightly whose E3 Base group is still being processed (Adele waits for it)."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    return Nightly(build_world(snapshot, fake=SmallPages, LICENSE_GUARD_MODE="act"))


async def test_the_nightly_finish_prunes_retry_rows_whose_retry_is_long_past_due() -> None:
    nightly = processing_e3_base()
    await nightly.run()  # the baseline: no retries
    nightly.world.clock.advance(DAY)
    await nightly.run()  # Adele waits for E3 Base: her retry is recorded
    assert ADELE in retry_rows(nightly)
    # E3 Base finished; the night after, nobody waits any more.
    nightly.directory.groups[E3_BASE]["licenseProcessingState"] = {"state": "ProcessingComplete"}
    nightly.world.clock.advance(DAY)

    result = await nightly.run()

    assert result.status == "done"
    assert retry_rows(nightly) == {}
    assert nightly.world.svc.tables.servicestate.query(RETRY_PK) == []


async def test_a_retry_still_to_come_keeps_its_row() -> None:
    nightly = processing_e3_base()
    await nightly.run()  # the baseline
    nightly.world.clock.advance(DAY)

    await nightly.run()  # Adele waits: her retry is due after the run

    due = retry_rows(nightly)
    assert ADELE in due
    assert due[ADELE] > nightly.world.clock.now()
