"""The reprocess ledger (`reprocessledger`, one partition per user) of users gone from the
tenant is cleaned like their capability records: by the recompute or the nightly scan that
finds them gone, and at the nightly finish for any user with rows whom no page held and Graph
no longer knows. Before, every user ever reprocessed or observed kept their rows forever."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.findings import COUNT_VIOLATION
from shared.core.reprocess import Attempt, Cause
from shared.ports.messages import RecomputeUsers
from shared.service.gone_capabilities import forget_gone_ledger
from shared.service.stores import ReprocessLedger
from shared.service.users import recompute_users
from tests.reconcile.conftest import (
    Nightly,
    killed_after_two_pages,
    mailbox_lost_after_a_baseline,
    open_codes,
)

pytestmark = pytest.mark.anyio
DAY = 24 * 3600
LONG_GONE = "0b7e5c1a-dead-4bee-8000-00000000a11e"
EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"


def ledger_users(nightly: Nightly) -> set[str]:
    return {e.partition_key for e in nightly.world.svc.tables.reprocessledger.query_all()}


def observe(nightly: Nightly, user_id: str) -> None:
    """A row in the user's reprocess ledger: a seat shortage seen now."""
    cause = Cause(COUNT_VIOLATION, EMS, None, ("consumed=5",))
    at = nightly.world.clock.now()
    ReprocessLedger(nightly.world.svc.tables.reprocessledger).observe(
        user_id, [Attempt.observation(at, cause)]
    )


def quiet_user(nightly: Nightly) -> str:
    """A user of the tenant with no open finding."""
    return next(u for u in sorted(nightly.directory.users) if not open_codes(nightly, u))


async def test_a_deleted_user_with_no_open_finding_loses_their_ledger_rows() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    await nightly.run()
    quiet = quiet_user(nightly)
    stays = next(u for u in sorted(nightly.directory.users) if u != quiet)
    observe(nightly, quiet)
    observe(nightly, stays)
    del nightly.directory.users[quiet]
    nightly.world.clock.advance(DAY)

    await nightly.run()

    assert quiet not in ledger_users(nightly)
    assert stays in ledger_users(nightly)  # the users still there keep theirs


async def test_the_ledger_of_a_user_deleted_long_ago_goes() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    await nightly.run()
    observe(nightly, LONG_GONE)
    nightly.world.clock.advance(DAY)

    await nightly.run()

    assert LONG_GONE not in ledger_users(nightly)


async def test_a_run_that_did_not_read_every_page_forgets_no_ledger_until_resumed() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    await nightly.run()
    quiet = quiet_user(nightly)
    observe(nightly, quiet)
    del nightly.directory.users[quiet]
    nightly.world.clock.advance(DAY)

    await killed_after_two_pages(nightly)
    assert quiet in ledger_users(nightly)

    assert (await nightly.run()).status == "done"
    assert quiet not in ledger_users(nightly)


async def test_a_recompute_that_finds_the_user_gone_forgets_their_ledger() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    quiet = quiet_user(nightly)
    observe(nightly, quiet)
    del nightly.directory.users[quiet]
    nightly.world.clock.advance(60)

    msg = RecomputeUsers(user_ids=(quiet,), reason="test", correlation_id="rc")
    outcome = await recompute_users(nightly.world.svc, msg)

    assert outcome.gone == [quiet]
    assert quiet not in ledger_users(nightly)


async def test_a_row_written_after_the_user_was_found_gone_stands() -> None:
    """The user was restored and decided again since the read that found them gone."""
    nightly = await mailbox_lost_after_a_baseline()
    quiet = quiet_user(nightly)
    table = nightly.world.svc.tables.reprocessledger
    found_gone_at = nightly.world.clock.now()
    nightly.world.clock.advance(60)
    observe(nightly, quiet)  # after the read

    forget_gone_ledger(nightly.world.svc, quiet, read_at=found_gone_at)

    assert [e.partition_key for e in table.query(quiet)] == [quiet]
    forget_gone_ledger(nightly.world.svc, quiet, read_at=found_gone_at + timedelta(minutes=2))
    assert table.query(quiet) == []
