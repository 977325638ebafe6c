"""Simulated clock: real time plus a jump offset (or frozen), so expiries come without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Wall-clock-like time that tests can advance (and optionally freeze)."""

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._start = start or datetime.now(UTC)
        self._t0 = time.monotonic()
        self._offset = timedelta(0)
        self.frozen = frozen

    def now(self) -> datetime:
        elapsed = timedelta(0) if self.frozen else timedelta(seconds=time.monotonic() - self._t0)
        return self._start + elapsed + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._offset += timedelta(seconds=seconds)
        return self.now()


def iso(dt: datetime) -> str:
    """Graph's UTC timestamp form, e.g. 2024-05-01T12:00:00Z; naive means UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso7(dt: datetime) -> str:
    """Graph's 7-digit fractional form used on subscriptions."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_iso(value: str) -> datetime:
    """Parse Graph timestamps (Z suffix, up to 7 fractional digits)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        frac = ""
        tz = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tz = rest[i:]
                break
            frac += ch
        text = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt
