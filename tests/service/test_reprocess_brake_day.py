"""The tenant-wide brake's daily cap across instances whose clocks differ by seconds."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.service.reprocessing import take_brake_token
from tests.service.world import build_world


def test_an_instance_a_few_seconds_behind_at_midnight_does_not_reset_the_daily_count() -> None:
    """One instance counted a call on the new UTC day; another, its clock 7 s behind, took a
    token still "yesterday": it moved the stored day back with a count of 1, and the next
    call on the new day found another day and started from 0 again - past the cap."""
    world = build_world(
        LICENSE_GUARD_MODE="act", REPROCESS_DAILY_CAP="2", REPROCESS_RATE_PER_MIN="600"
    )
    world.clock.at = datetime(2026, 11, 25, 0, 0, 5, tzinfo=UTC)
    assert take_brake_token(world.svc, world.clock.now()) == 0.0
    behind = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)
    assert take_brake_token(world.svc, behind) == 0.0  # counted on the stored day, the 25th

    world.clock.at = datetime(2026, 11, 25, 0, 0, 10, tzinfo=UTC)
    wait = take_brake_token(world.svc, world.clock.now())

    assert wait == (datetime(2026, 11, 26, tzinfo=UTC) - world.clock.now()).total_seconds()


def test_the_count_starts_again_on_the_next_utc_day() -> None:
    world = build_world(
        LICENSE_GUARD_MODE="act", REPROCESS_DAILY_CAP="1", REPROCESS_RATE_PER_MIN="600"
    )
    world.clock.at = datetime(2026, 11, 24, 23, 59, 0, tzinfo=UTC)
    assert take_brake_token(world.svc, world.clock.now()) == 0.0
    assert take_brake_token(world.svc, world.clock.now()) > 0.0

    world.clock.at = datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC)
    assert take_brake_token(world.svc, world.clock.now()) == 0.0
