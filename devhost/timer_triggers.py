"""Timer triggers: each schedule's loop (never overlapping itself, missed occurrences
collapsing into one late run flagged past due) and firing a timer on demand."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from azure.functions.timer import TimerRequest

from devhost.index import TIMER, FunctionSpec
from devhost.invocation import Invocation, now
from devhost.runtime import HostRuntime

_PAST_DUE_TOLERANCE = timedelta(seconds=1)


class TimerTriggers(HostRuntime):
    """Runs the app's timer functions (mixed into `DevHost`)."""

    async def _run_timer(self, spec: FunctionSpec, record: Invocation) -> Invocation:
        try:
            await self._call(spec, TimerRequest(past_due=bool(record.past_due)), record)
        except Exception as error:
            self._end(record, error)
        else:
            self._end(record)
        return record

    async def _fire(self, spec: FunctionSpec, past_due: bool) -> Invocation:
        return await self._run_timer(spec, self._begin(spec, past_due=past_due))

    async def _timer(self, spec: FunctionSpec, startup: Invocation | None) -> None:
        schedule = spec.schedule
        if schedule is None:  # pragma: no cover - index_app always sets it for timers
            return
        if startup is not None:
            await self._run_timer(spec, startup)
        last = now()
        while True:
            due = schedule.next_after(last)
            delay = (due - now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            started = now()
            past_due = started - due > _PAST_DUE_TOLERANCE
            await self._fire(spec, past_due)  # awaited: a timer never overlaps itself
            last = started if past_due else due  # missed occurrences collapse into one late run

    def fire_timer(self, name: str, timeout: float = 60.0) -> Invocation:
        """Run a timer function now (like the admin API) and return its finished invocation."""
        spec = self.functions.get(name)
        if spec is None or spec.trigger != TIMER:
            raise KeyError(f"{name!r} is not a timer function of this app")
        return self._on_loop(self._fire(spec, past_due=False), timeout)
