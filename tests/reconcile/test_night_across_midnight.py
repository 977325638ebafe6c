"""A nightly schedule whose firings cross midnight UTC (`RECONCILE_SCHEDULE` 23:00, 00:00,
01:00): the night's later firings, past midnight, find its run done and do nothing, instead of
starting the next date's run at once (the first night ran twice; every night after, the run
moved past midnight)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.reconcile.conftest import Nightly, killed_after_two_pages

pytestmark = pytest.mark.anyio

HOUR = 3600


def at(nightly: Nightly, moment: datetime) -> None:
    nightly.world.clock.at = moment


async def test_a_firing_after_midnight_of_the_same_night_does_nothing(nightly: Nightly) -> None:
    at(nightly, datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    first = await nightly.run()
    assert (first.status, first.date) == ("done", "2026-11-24")

    at(nightly, datetime(2026, 11, 25, 0, 0, tzinfo=UTC))
    after_midnight = await nightly.run()
    at(nightly, datetime(2026, 11, 25, 1, 0, tzinfo=UTC))
    later = await nightly.run()

    assert after_midnight.status == "skipped"
    assert later.status == "skipped"
    assert after_midnight.run_id == first.run_id

    at(nightly, datetime(2026, 11, 25, 23, 0, tzinfo=UTC))
    next_night = await nightly.run()
    assert (next_night.status, next_night.date) == ("done", "2026-11-25")
    at(nightly, datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    assert (await nightly.run()).status == "skipped"


async def test_the_default_schedule_still_runs_every_night(nightly: Nightly) -> None:
    at(nightly, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    assert (await nightly.run()).status == "done"
    at(nightly, datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    assert (await nightly.run()).status == "skipped"
    at(nightly, datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    assert (await nightly.run()).date == "2026-11-25"


async def test_a_run_forced_the_same_night_still_runs(nightly: Nightly) -> None:
    at(nightly, datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    await nightly.run()
    at(nightly, datetime(2026, 11, 25, 0, 30, tzinfo=UTC))

    forced = await nightly.run(force=True)

    assert forced.status == "done"


async def test_a_run_finished_the_next_night_leaves_that_night_its_own_run(
    nightly: Nightly,
) -> None:
    at(nightly, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    await killed_after_two_pages(nightly)  # the night of the 24th never finished it
    at(nightly, datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    resumed = await nightly.run()
    assert (resumed.status, resumed.date) == ("done", "2026-11-24")

    at(nightly, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    own = await nightly.run()

    assert (own.status, own.date) == ("done", "2026-11-25")
