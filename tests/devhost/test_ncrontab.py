"""The six-field NCRONTAB parser: next-occurrence computations and rejected expressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import CronError, CronSchedule


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # every 5 minutes, on the minute
        ("0 */5 * * * *", at(2026, 3, 1, 10, 2, 30), at(2026, 3, 1, 10, 5, 0)),
        # strictly after: an exact match moves to the next one
        ("0 */5 * * * *", at(2026, 3, 1, 10, 5, 0), at(2026, 3, 1, 10, 10, 0)),
        # daily 02:30 rolls to tomorrow
        ("0 30 2 * * *", at(2026, 3, 1, 2, 30, 1), at(2026, 3, 2, 2, 30, 0)),
        # every second
        ("* * * * * *", at(2026, 3, 1, 10, 0, 0), at(2026, 3, 1, 10, 0, 1)),
        # lists and ranges: seconds 10,20; minutes 0-1
        ("10,20 0-1 * * * *", at(2026, 3, 1, 10, 0, 20), at(2026, 3, 1, 10, 1, 10)),
        ("10,20 0-1 * * * *", at(2026, 3, 1, 10, 1, 20), at(2026, 3, 1, 11, 0, 10)),
        # weekdays at 09:00 (Mon-Fri): Friday 2026-03-06 -> Monday 2026-03-09
        ("0 0 9 * * 1-5", at(2026, 3, 6, 9, 0, 0), at(2026, 3, 9, 9, 0, 0)),
        # names: Sundays in January and July at midnight
        ("0 0 0 * Jan,Jul Sun", at(2026, 1, 31, 0, 0, 0), at(2026, 7, 5, 0, 0, 0)),
        # 7 is also Sunday
        ("0 0 12 * * 7", at(2026, 3, 2, 0, 0, 0), at(2026, 3, 8, 12, 0, 0)),
        # stepped range: hours 8-18 every 5 -> 8, 13, 18
        ("0 0 8-18/5 * * *", at(2026, 3, 1, 13, 0, 0), at(2026, 3, 1, 18, 0, 0)),
        # a/n: from minute 15 every 20 -> 15, 35, 55
        ("0 15/20 * * * *", at(2026, 3, 1, 10, 36, 0), at(2026, 3, 1, 10, 55, 0)),
        # month end: the 31st skips short months
        ("0 0 0 31 * *", at(2026, 4, 1, 0, 0, 0), at(2026, 5, 31, 0, 0, 0)),
        # leap day
        ("0 0 0 29 2 *", at(2026, 3, 1, 0, 0, 0), at(2028, 2, 29, 0, 0, 0)),
        # day AND day-of-week (NCrontab): Friday the 13th
        ("0 0 0 13 * Fri", at(2026, 1, 1, 0, 0, 0), at(2026, 2, 13, 0, 0, 0)),
        # year rollover
        ("0 0 0 1 1 *", at(2026, 12, 31, 23, 59, 59), at(2027, 1, 1, 0, 0, 0)),
        # sub-second inputs round up to the next whole second
        (
            "* * * * * *",
            at(2026, 3, 1, 10, 0, 0) + timedelta(microseconds=1),
            at(2026, 3, 1, 10, 0, 1),
        ),
    ],
)
def test_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(after) == expected


def test_next_occurrence_is_computed_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 3, 1, 3, 0, 0, tzinfo=plus_two)  # 01:00 UTC
    assert CronSchedule.parse("0 30 2 * * *").next_after(moment) == at(2026, 3, 1, 2, 30, 0)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule.parse("* * * * * *").next_after(datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/5 * * * *", "six fields.*add a leading seconds field"),
        ("0 0 0 * * * *", "six fields"),
        ("60 * * * * *", "second field: 60 is outside 0-59"),
        ("0 0 24 * * *", "hour field"),
        ("0 0 0 0 * *", "day field: 0 is outside 1-31"),
        ("0 0 0 * 13 *", "month field"),
        ("0 0 0 * * Funday", "day-of-week field"),
        ("*/0 * * * * *", "step"),
        ("0 5-1 * * * *", "backwards"),
        ("0 1,,2 * * * *", "empty list item"),
        ("00:05:00", "six fields"),
    ],
)
def test_invalid_expressions_are_rejected(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronSchedule.parse(expression)


def test_impossible_dates_are_reported() -> None:
    with pytest.raises(CronError, match="never fires"):
        CronSchedule.parse("0 0 0 30 2 *").next_after(at(2026, 1, 1, 0, 0, 0))
