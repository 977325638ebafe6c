"""Progress of a long CLI run on standard error: done/total, rate and ETA.

On a terminal: one line redrawn in place. Not on a terminal (redirected, CI, a scheduled
task): one plain line at most every `interval` seconds, so a 144 s run is not silent and a log
is not flooded. `--quiet` turns it off. Called with (phase, done, total or None).

A phase's total, once given, is kept: later calls with None show it too. The scan announces
the users phase's total (the tenant's user count) before the phase starts, so every command
that pages users shows done/total without passing it on each page. The count is Graph's
eventually consistent estimate: when more users come than it said, the total follows `done`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

INTERVAL_SECONDS = 10.0


class Progress:
    def __init__(
        self,
        quiet: bool,
        stream: IO[str] | None = None,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.on = not quiet
        self.tty = self.stream.isatty()
        self.interval, self.clock = interval, clock
        self.started: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        self.last_line = float("-inf")
        self.shown = False

    def text(self, phase: str, done: int, total: int | None, now: float) -> str:
        start = self.started.setdefault(phase, now)
        elapsed = now - start
        parts = [f"{phase}: {done}" + (f"/{total}" if total else "")]
        if total:
            parts.append(f"{100 * done // max(total, 1)}%")
        if elapsed < 1.0:  # too early for a rate that means anything
            return ", ".join(parts)
        rate = done / elapsed
        parts.append(f"{rate:.0f}/s")
        if total and rate > 0 and done < total:
            parts.append(f"ETA {_duration((total - done) / rate)}")
        return ", ".join(parts)

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.on:
            return
        if total:
            self.totals[phase] = total
        known = self.totals.get(phase)
        total = max(known, done) if known else None
        now = self.clock()
        text = self.text(phase, done, total, now)
        if self.tty:
            self.stream.write("\r" + text.ljust(70))
            self.shown = True
        elif now - self.last_line >= self.interval or (total and done >= total):
            self.stream.write(text + "\n")
            self.last_line = now
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
