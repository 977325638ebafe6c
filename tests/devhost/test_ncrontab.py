"""The six-field NCRONTAB parser: next-occurrence computations and rejected expressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import CronError, CronSchedule
from shared.platform.setting_values import parse_ncrontab


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
        # names by any prefix of the full name, the first that fits: T is Tuesday, M March
        ("0 0 12 * * Thurs", at(2026, 3, 2, 0, 0, 0), at(2026, 3, 5, 12, 0, 0)),
        ("0 0 12 * M T", at(2026, 1, 1, 0, 0, 0), at(2026, 3, 3, 12, 0, 0)),
        ("0 0 12 * * MONDAY", at(2026, 3, 2, 12, 0, 0), at(2026, 3, 9, 12, 0, 0)),
        # a range written backwards is read forwards (NCrontab swaps its ends)
        ("0 0 9 * * Fri-Mon", at(2026, 3, 6, 9, 0, 0), at(2026, 3, 9, 9, 0, 0)),
        # a step below 1 is 1: */0 is every minute
        ("0 */0 * * * *", at(2026, 3, 1, 10, 2, 0), at(2026, 3, 1, 10, 3, 0)),
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
        ("*/x * * * * *", "step"),
        ("0 0 0 * * 7", "day-of-week field: 7 is outside 0-6"),
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


# What the host's NCrontab (CrontabFieldImpl.InternalParse/ParseValue, CrontabField.Accumulate,
# CrontabSchedule.TryParse) accepts and refuses. The dev host and the app's settings check must
# give the same verdict on each.
ACCEPTED = [
    "0 0 12 * * 0",
    "0 0 12 * * 6",
    "0 0 12 * * Sun-Sat",
    "0 0 12 * * S",  # Sunday: the first name it starts
    "0 0 12 * * thu,FRIDAY,sa",
    "0 0 12 * Ju-December *",
    "0 0 12 * * 5-1",  # swapped: 1-5
    "0 */0 * * * *",  # a step below 1 is 1
    "0 */-3 * * * *",
    "0 5/+15 * * * *",
    "0 0 12 31 2 *",  # never fires, but is read
    "0  0  12  *  *  *",  # runs of spaces are one separator
    "0 0 1-12/5 * * Mon/2",
    "0 0 12 * 12/1 *",
]
REFUSED = [
    "0 0 12 * * 7",  # 0-6 only: 7 is no Sunday
    "0 0 12 * * 0-7",
    "0 0 12 * * Mondays",  # no prefix of a name
    "0 0 12 * * Sunday-Fri-Sat",
    "0 0 12 Mon * *",  # names in the month and day-of-week fields only
    "0\t0 12 * * *",  # a tab is no separator: five fields
    "0 0 12 * * *,",
    "0 0 12 * * ,1",
    "0 0 12 * * 1-",
    "0 0 12 * * -1",
    "0 0 12 * * /2",
    "0 0 12 * * */",
    "0 0 12 * * 1/2/3",
    "0 0 12 0 * *",
    "0 60 * * * *",
    "0 0 12 * * \u0663",  # a digit, but not one int.Parse reads
    "0 0 12 * * 1_0",
    "0 0 12 * * **",
    "0 0 12 * *",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_the_dev_host_and_the_settings_check_accept_what_the_host_does(expression: str) -> None:
    CronSchedule.parse(expression)
    assert parse_ncrontab(expression) == expression


@pytest.mark.parametrize("expression", REFUSED)
def test_the_dev_host_and_the_settings_check_refuse_what_the_host_does(expression: str) -> None:
    with pytest.raises(CronError):
        CronSchedule.parse(expression)
    with pytest.raises(ValueError):  # noqa: PT011 - each names its field; the verdict matters
        parse_ncrontab(expression)


def test_names_backwards_ranges_and_steps_read_as_the_host_reads_them() -> None:
    weekdays = CronSchedule.parse("0 0 12 * Ju S-Th")

    assert weekdays.days_of_week == frozenset({0, 1, 2, 3, 4})
    assert weekdays.months == frozenset({6})
    assert CronSchedule.parse("0 0 12 * * 5-1").days_of_week == frozenset({1, 2, 3, 4, 5})
    assert CronSchedule.parse("0 */0 * * * *").minutes == frozenset(range(60))
    assert CronSchedule.parse("0 50/-1 * * * *").minutes == frozenset(range(50, 60))
