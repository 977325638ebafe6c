"""Group-based licensing scheduler: queues affected users and feeds them to the GBL processor.

Entra processes membership and license changes asynchronously; this paces it on the simulated
clock (processingDelaySeconds, processingRatePerMinute) and drives each group's
licenseProcessingState QueuedForProcessing -> ProcessingInProgress -> ProcessingComplete.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Obj = dict[str, Any]


@dataclass
class Job:
    """Users to recompute because of one change (group_id None: not tied to one group)."""

    ready_at: datetime
    group_id: str | None
    users: deque[str]
    started: bool = False
    done: int = 0
    failed: int = field(default=0)


class LicenseProcessor:
    """Paces calls to `process(user_ids)` at `rate` users per simulated minute."""

    def __init__(
        self,
        process: Callable[[set[str]], set[str]],
        on_state: Callable[[str, str, Job], None],
        *,
        rate_per_minute: float | None,
        delay_seconds: float,
    ) -> None:
        self._process = process
        self._on_state = on_state
        self.rate = rate_per_minute
        self.delay = delay_seconds
        self.jobs: list[Job] = []
        self._credit = 0.0
        self._last: datetime | None = None

    def schedule(self, now: datetime, group_id: str | None, users: Iterable[str]) -> Job:
        job = Job(now + timedelta(seconds=self.delay), group_id, deque(users))
        self.jobs.append(job)
        if group_id is not None:
            self._on_state(group_id, "QueuedForProcessing", job)
        return job

    def pending_users(self) -> int:
        return sum(len(j.users) for j in self.jobs)

    def next_ready_at(self) -> datetime | None:
        return min((j.ready_at for j in self.jobs), default=None)

    def time_to_finish(self, now: datetime) -> float:
        """Simulated seconds until every queued user has been processed."""
        if not self.jobs:
            return 0.0
        start = max(now, min(j.ready_at for j in self.jobs))
        last_ready = max(j.ready_at for j in self.jobs)
        wait = (start - now).total_seconds()
        if self.rate is None:
            return max(wait, (last_ready - now).total_seconds())
        needed = max(0.0, self.pending_users() - self._credit)
        return max(wait + needed / self.rate * 60.0, (last_ready - now).total_seconds()) + 1e-6

    def pump(self, now: datetime) -> int:
        """Process whatever the simulated time since the last pump allows; returns users done."""
        ready = [j for j in self.jobs if j.ready_at <= now]
        if not ready:
            self._last = now
            self._credit = 0.0
            return 0
        if self.rate is None:
            budget = sum(len(j.users) for j in ready)
        else:
            start = min(j.ready_at for j in ready)
            if self._last is not None and self._last > start:
                start = self._last
            self._credit += max(0.0, (now - start).total_seconds()) / 60.0 * self.rate
            budget = int(self._credit)
            self._credit -= budget
        self._last = now
        done = 0
        for job in ready:
            if budget <= 0 and job.users:
                continue
            if not job.started:
                job.started = True
                if job.group_id is not None:
                    self._on_state(job.group_id, "ProcessingInProgress", job)
            take = min(budget, len(job.users))
            batch = {job.users.popleft() for _ in range(take)}
            if batch:
                self._process(batch)
            job.done += take
            budget -= take
            done += take
            if not job.users:
                self.jobs.remove(job)
                if job.group_id is not None and not any(
                    j.group_id == job.group_id for j in self.jobs
                ):
                    self._on_state(job.group_id, "ProcessingComplete", job)
        if not self.jobs:
            self._credit = 0.0
        return done
