"""Identity & access throttling (graph-facts §6.2): resource-unit token buckets per app+tenant.

The audit log (`/auditLogs/...`) is the identity and access *reports* service instead, with its
own limit: five requests per 10 seconds per app per tenant, whatever they cost
(learn.microsoft.com/graph/throttling-limits, "Identity and access reports service limits").

Buckets refill continuously (capacity per window) on real monotonic time by default, since a
client's retry loop waits in real time; `clock: "sim"` makes them refill on the simulated clock
instead. Priority (`x-ms-throttle-priority`): Low is refused once 80% of the budget is used,
Normal at 100%, High may overdraw by a further 10%.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import apply_settings, current_settings, setting

SIZE_BUDGET = {"S": 3500, "M": 5000, "L": 8000}
WINDOW_SECONDS = 10.0
WRITE_BUDGET = 3000
WRITE_WINDOW_SECONDS = 150.0
REPORTS_BUDGET = 5
REPORTS_WINDOW_SECONDS = 10.0
LOW_PRIORITY_SHARE = 0.8
HIGH_PRIORITY_OVERDRAW = 0.1


def request_cost(method: str, template: str, params: Mapping[str, str]) -> tuple[int, bool]:
    """Resource units of one request and whether it is a write (documented base costs)."""
    keys = {k.lower().lstrip("$"): v for k, v in params.items()}
    write = method.upper() != "GET"
    if write:
        base = 1
    elif template in ("/users", "/users/{id}"):
        base = 2
    elif (
        template.endswith(("/members", "/membersWithLicenseErrors"))
        or template == "/subscribedSkus"
    ):
        base = 3
    else:
        base = 1
    cost = base
    if "select" in keys:
        cost -= 1
    if "expand" in keys:
        cost += 1
    top = keys.get("top")
    if top is not None and top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost), write


@dataclass
class Bucket:
    capacity: float
    window: float
    tokens: float
    last: float

    def refill(self, now: float) -> None:
        rate = self.capacity / self.window
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * rate)
        self.last = now

    def retry_after(self, needed: float) -> float:
        rate = self.capacity / self.window
        return max(0.0, (needed - self.tokens) / rate)


@dataclass
class ThrottleDecision:
    allowed: bool
    retry_after: int = 0
    scope: str = ""
    information: str = ""
    used_share: float = 0.0


def _optional_int(budget: Any) -> int | None:
    return None if budget is None else int(budget)


@dataclass
class Throttle:
    """Two buckets per app: all resource units, and the separate write budget."""

    size_class: str = "M"
    enabled: bool = setting("enabled", bool, default=True)
    budget: int | None = setting("budget", _optional_int, default=None)
    write_budget: int = setting("writeBudget", int, default=WRITE_BUDGET)
    window: float = setting("windowSeconds", float, default=WINDOW_SECONDS)
    write_window: float = setting("writeWindowSeconds", float, default=WRITE_WINDOW_SECONDS)
    reports_budget: int = setting("reportsBudget", int, default=REPORTS_BUDGET)
    reports_window: float = setting("reportsWindowSeconds", float, default=REPORTS_WINDOW_SECONDS)
    clock: str = setting("clock", str, default="real")
    sim_seconds: Callable[[], float] = field(default=time.monotonic)
    _buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, size_class: str, cfg: Mapping[str, Any], sim_seconds: Callable[[], float]
    ) -> Throttle:
        t = cls(size_class=size_class.upper() if size_class else "M", sim_seconds=sim_seconds)
        t.configure(cfg)
        return t

    def configure(self, cfg: Mapping[str, Any]) -> None:
        apply_settings(self, cfg)
        self._buckets.clear()

    def describe(self) -> dict[str, Any]:
        """The settings, with `budget` the one in force (the size class's when unset)."""
        return current_settings(self) | {"budget": self.capacity}

    @property
    def capacity(self) -> int:
        return self.budget if self.budget is not None else SIZE_BUDGET.get(self.size_class, 5000)

    def _now(self) -> float:
        return self.sim_seconds() if self.clock == "sim" else time.monotonic()

    def _bucket(self, app: str, kind: str, now: float) -> Bucket:
        key = (app, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            cap, win = {
                "all": (float(self.capacity), self.window),
                "write": (float(self.write_budget), self.write_window),
                "reports": (float(self.reports_budget), self.reports_window),
            }[kind]
            bucket = Bucket(cap, win, cap, now)
            self._buckets[key] = bucket
        bucket.refill(now)
        return bucket

    def check(
        self, app: str, tenant: str, cost: int, write: bool, priority: str, *, reports: bool = False
    ) -> ThrottleDecision:
        if not self.enabled:
            return ThrottleDecision(True)
        now = self._now()
        if reports:
            return self._check_reports(app, tenant, now)
        bucket = self._bucket(app, "all", now)
        floor = 0.0
        prio = priority.lower()
        if prio == "low":
            floor = bucket.capacity * (1 - LOW_PRIORITY_SHARE)
        elif prio == "high":
            floor = -bucket.capacity * HIGH_PRIORITY_OVERDRAW
        scope = f"Tenant_Application/ReadWrite/{tenant}/{app}"
        if bucket.tokens - cost < floor:
            wait = bucket.retry_after(cost + floor)
            return ThrottleDecision(
                False, max(1, math.ceil(wait)), scope, "ResourceUnitLimitExceeded", 1.0
            )
        writes = self._bucket(app, "write", now) if write else None
        if writes is not None and writes.tokens - 1 < 0:
            wait = writes.retry_after(1)
            return ThrottleDecision(
                False, max(1, math.ceil(wait)), scope, "WriteLimitExceeded", 1.0
            )
        bucket.tokens -= cost
        if writes is not None:
            writes.tokens -= 1
        used = 1 - bucket.tokens / bucket.capacity
        return ThrottleDecision(True, used_share=used)

    def _check_reports(self, app: str, tenant: str, now: float) -> ThrottleDecision:
        """One request against the reports service's own count (its cost does not matter)."""
        bucket = self._bucket(app, "reports", now)
        if bucket.tokens < 1:
            wait = bucket.retry_after(1)
            scope = f"Tenant_Application/Read/{tenant}/{app}"
            return ThrottleDecision(
                False, max(1, math.ceil(wait)), scope, "RequestLimitExceeded", 1.0
            )
        bucket.tokens -= 1
        return ThrottleDecision(True)
