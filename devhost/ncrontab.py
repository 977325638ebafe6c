"""Six-field NCRONTAB schedules, as the Functions timer trigger reads them (UTC only).

Fields: ``{second} {minute} {hour} {day} {month} {day-of-week}``, separated by spaces (only: a
tab is part of a field). Each field takes ``*``, a number, a range ``a-b``, a step ``*/n`` /
``a-b/n`` / ``a/n`` (``a`` to the field's maximum), and comma-separated lists of those. Exactly
as NCrontab (the library the host uses, `CrontabFieldImpl` and `CrontabField.Accumulate`)
reads them:

- days of week are 0-6 (0 = Sunday; 7 is refused), months 1-12;
- a name is any prefix of a full English name, in any case, the first in order that it starts
  (``M`` is March, ``Ju`` June, ``T`` Tuesday, ``Thurs`` Thursday, ``Monday``), in the month
  and day-of-week fields only;
- a range written backwards is read forwards (``5-1`` is ``1-5``);
- a step below 1 (``*/0``, ``*/-2``) is a step of 1, so ``*/0`` is ``*``;
- a time must match the day-of-month AND the day-of-week field (classic Unix cron ORs them
  when both are restricted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_VALUE = re.compile(r"[0-9]+[\t-\r ]*")
"""What .NET's `int.Parse` reads once NCrontab has seen a digit first: ASCII digits, then
white space."""
_STEP = re.compile(r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*")
"""A step as `int.Parse` reads it: a sign allowed, white space around."""
_INT32 = 2**31
# Searching this far ahead always finds an occurrence of any satisfiable schedule
# (29 February on a given weekday recurs within 28 years).
_HORIZON_DAYS = 366 * 30


class CronError(ValueError):
    """The schedule is not a valid six-field NCRONTAB expression."""


def _value(text: str, field: str, names: tuple[str, ...], lo: int, hi: int) -> int:
    if not text:
        raise CronError(f"{field} field: an empty value")
    if text[0] in "0123456789":
        if not _VALUE.fullmatch(text):
            raise CronError(f"{field} field: {text!r} is not a number")
        number = int(text)
        if not lo <= number <= hi:
            raise CronError(f"{field} field: {number} is outside {lo}-{hi}")
        return number
    for n, name in enumerate(names):
        if name.startswith(text.lower()):
            return lo + n
    raise CronError(f"{field} field: {text!r} is not a number or a known name")


def _step(text: str, field: str) -> int:
    if not _STEP.fullmatch(text) or not -_INT32 <= int(text) < _INT32:
        raise CronError(f"{field} field: step {text!r} is not a whole number")
    return max(int(text), 1)


def _parse_item(item: str, field: str, lo: int, hi: int, names: tuple[str, ...]) -> range:
    if not item:
        raise CronError(f"{field} field: empty list item")
    base, step = item, 1
    slash = item.find("/")
    if slash > 0:
        base, step = item[:slash], _step(item[slash + 1 :], field)
    if base == "*":
        return range(lo, hi + 1, step)
    dash = base.find("-")
    if dash > 0:
        first = _value(base[:dash], field, names, lo, hi)
        last = _value(base[dash + 1 :], field, names, lo, hi)
        return range(min(first, last), max(first, last) + 1, step)
    start = _value(base, field, names, lo, hi)
    return range(start, (hi if slash > 0 else start) + 1, step)


def _parse_field(text: str, field: str, lo: int, hi: int, names: tuple[str, ...]) -> frozenset[int]:
    items = text.split(",") if text.find(",") > 0 else [text]
    return frozenset(value for item in items for value in _parse_item(item, field, lo, hi, names))


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; `next_after` gives the next firing time strictly after a moment."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday .. 6 = Saturday

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = [part for part in expression.split(" ") if part]
        if len(parts) != 6:
            hint = " (add a leading seconds field)" if len(parts) == 5 else ""
            raise CronError(
                f"NCRONTAB {expression!r} needs six fields "
                f"{{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}{hint}"
            )
        sets = [
            _parse_field(part, name, lo, hi, names)
            for part, (name, lo, hi, names) in zip(parts, _FIELDS, strict=True)
        ]
        return cls(expression, *sets)

    def _day_matches(self, moment: datetime) -> bool:
        # Python: Monday = 0; NCRONTAB: Sunday = 0.
        return (
            moment.month in self.months
            and moment.day in self.days
            and (moment.weekday() + 1) % 7 in self.days_of_week
        )

    def _first_time_on(self, day: datetime, not_before: timedelta) -> datetime | None:
        for hour in sorted(self.hours):
            if timedelta(hours=hour + 1) <= not_before:
                continue
            for minute in sorted(self.minutes):
                if timedelta(hours=hour, minutes=minute + 1) <= not_before:
                    continue
                for second in sorted(self.seconds):
                    offset = timedelta(hours=hour, minutes=minute, seconds=second)
                    if offset >= not_before:
                        return day + offset
        return None

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (timezone-aware; the result is UTC)."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs a timezone-aware datetime (schedules are UTC)")
        start = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        not_before = start - day
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                found = self._first_time_on(day, not_before)
                if found is not None:
                    return found
            day += timedelta(days=1)
            not_before = timedelta(0)
        raise CronError(f"NCRONTAB {self.expression!r} never fires (no matching date)")
