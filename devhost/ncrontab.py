"""Six-field NCRONTAB schedules, as the Functions timer trigger reads them (UTC only).

Fields: ``{second} {minute} {hour} {day} {month} {day-of-week}``. Each field takes ``*``, a
number, a range ``a-b``, a step ``*/n`` / ``a-b/n`` / ``a/n``, and comma-separated lists of
those. Months accept ``Jan``..``Dec`` and days of week ``Sun``..``Sat`` (0 = Sunday, 7 is also
Sunday). Like NCrontab (the library the host uses) a time must match the day-of-month AND the
day-of-week field; classic Unix cron ORs them when both are restricted.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
# Searching this far ahead always finds an occurrence of any satisfiable schedule
# (29 February on a given weekday recurs within 28 years).
_HORIZON_DAYS = 366 * 30


class CronError(ValueError):
    """The schedule is not a valid six-field NCRONTAB expression."""


def _value(text: str, field: str, names: dict[str, int], lo: int, hi: int) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"{field} field: {text!r} is not a number or a known name")
    number = int(text)
    if not lo <= number <= hi:
        raise CronError(f"{field} field: {number} is outside {lo}-{hi}")
    return number


def _parse_field(text: str, field: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field} field: empty list item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field} field: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _value(first, field, names, lo, hi)
            end = _value(last, field, names, lo, hi)
            if start > end:
                raise CronError(f"{field} field: range {base!r} runs backwards")
        else:
            start = _value(base, field, names, lo, hi)
            end = hi if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


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
        parts = expression.split()
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
        dow = frozenset(d % 7 for d in sets[5])
        return cls(expression, sets[0], sets[1], sets[2], sets[3], sets[4], dow)

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
