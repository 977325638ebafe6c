"""A dry run tells what the run would do, the finish included: the products' and groups' own
findings it would open, and the findings of users gone from the tenant it would resolve."""

from __future__ import annotations

import pytest

from tests.demo_tenant import NESTOR
from tests.reconcile.conftest import Nightly, mailbox_lost_after_a_baseline

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


async def test_a_dry_run_counts_the_findings_the_run_opens(nightly: Nightly) -> None:
    dry = await nightly.run(dry_run=True)
    real = await nightly.run()

    assert dry.new_findings == real.new_findings
    assert real.summary is not None
    # the users' findings by code, and the data-loss guard's (Alex's stale E3 path)
    assert {f.code for f in dry.new} == {*real.summary.findings_by_code, "DataLossRisk"}


async def test_a_dry_run_counts_the_findings_the_run_resolves(nightly: Nightly) -> None:
    await nightly.run()
    nightly.world.clock.advance(DAY)
    del nightly.directory.users[NESTOR]  # deleted, with an open UniquenessViolation

    dry = await nightly.run(dry_run=True)
    real = await nightly.run()

    assert real.resolved_findings > 0
    assert dry.resolved_findings == real.resolved_findings
    assert any(line.startswith("resolve finding UniquenessViolation") for line in dry.planned)


async def test_a_dry_run_counts_the_data_loss_the_run_finds() -> None:
    """Tonight a user lost her mailbox: the run opens a DataLossRisk finding (and mails it at
    once); the dry run must say so, and record nothing of the guard's."""
    nightly = await mailbox_lost_after_a_baseline()
    capabilities = list(nightly.world.svc.tables.servicestate.query("capabilities"))

    dry = await nightly.run(dry_run=True)

    assert list(nightly.world.svc.tables.servicestate.query("capabilities")) == capabilities
    real = await nightly.run()
    opened = [
        e.fields["code"]
        for e in nightly.world.svc.tables.findings.query_all()
        if e.fields.get("firstRunId") == real.run_id
    ]
    assert "DataLossRisk" in opened
    assert dry.new_findings == real.new_findings
    assert "DataLossRisk" in {f.code for f in dry.new}
