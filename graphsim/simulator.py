"""The simulator: one tenant's state with its Graph API, notifier, throttle and faults, driven
either over HTTP (`graphsim.app`) or directly by tests; simulated time advances only here."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .batch import run_batch
from .clock import SimClock
from .errors import GraphError, error_body
from .faults import Faults
from .graph_api import GraphApi
from .notify import Notifier
from .roles import denied
from .state import SimState
from .throttle import Throttle
from .wire import Req, Resp

Obj = dict[str, Any]


class Simulator:
    """One simulated tenant with its Graph API, notifier, throttle and faults."""

    def __init__(
        self,
        tenant: Obj,
        *,
        token: str | None = None,
        seed: int = 0,
        clock: SimClock | None = None,
        tenant_factory: Callable[[], Obj] | None = None,
    ) -> None:
        self.token = token
        self.seed = seed
        self.state = SimState(tenant, clock or SimClock(), tenant_factory=tenant_factory)
        x = self.state.x
        self.notifier = Notifier(self.state, seed=seed, cfg=x.get("notifications") or {})
        self.throttle = Throttle.from_config(
            str(x.get("tenantSizeClass", "M")),
            x.get("throttle") or {},
            sim_seconds=lambda: self.state.clock.now().timestamp(),
        )
        self.faults = Faults.from_config(x.get("faults") or {}, seed)
        self.api = GraphApi(self.state, self.notifier, self.throttle, self.faults)
        self.batches = 0
        """Batches answered: with the seed, what orders the next one's items."""

    async def handle(self, req: Req) -> Resp:
        if req.path.rstrip("/") == "/$batch":
            if req.method != "POST":
                return Resp(
                    405, error_body("Request_BadRequest", "Only POST is allowed on $batch.")
                )
            try:
                self.batches += 1
                order = random.Random(f"{self.seed}/{self.batches}")  # noqa: S311 - simulation
                resp = await run_batch(req, self._dispatch, order)
            except GraphError as exc:
                resp = self.api.error(req, exc)
            self.state.count("POST /$batch", resp.status)
            return resp
        return await self._dispatch(req)

    async def _dispatch(self, req: Req) -> Resp:
        """Dispatch, unless the token's app roles allow none the call needs (Graph's 403)."""
        if denied(req.method, req.path, req.roles):
            self.state.count("403", 403)
            message = "Insufficient privileges to complete the operation."
            return Resp(403, error_body("Authorization_RequestDenied", message))
        return await self.api.dispatch(req)

    def advance(self, seconds: float) -> None:
        self.state.clock.advance(seconds)
        self.state.pump()
        self.notifier.check_lifecycle()

    async def drain(self, *, timeout: float = 30.0, settle: bool = False) -> Obj:
        """Wait for deliveries; with settle=True also advance the clock until processing is done."""
        self.state.pump()
        self.notifier.check_lifecycle()
        if settle and self.state.processor.jobs:
            needed = self.state.processor.time_to_finish(self.state.clock.now())
            self.advance(needed)
            while self.state.processor.jobs:
                self.advance(self.state.processor.time_to_finish(self.state.clock.now()) + 1)
        delivered = await self.notifier.drain(timeout)
        return self.status() | {"quiet": delivered and not self.notifier.busy()}

    def status(self) -> Obj:
        proc = self.state.processor
        nxt = proc.next_ready_at()
        return {
            "now": self.state.clock.now().isoformat(),
            "pendingUsers": proc.pending_users(),
            "pendingJobs": len(proc.jobs),
            "nextProcessingAt": nxt.isoformat() if nxt else None,
            "pendingNotifications": sum(len(v) for v in self.notifier.pending.values()),
            "deliveriesInFlight": len(self.notifier.flushing),
        }

    def reset(self) -> None:
        self.state.reset()
        self.notifier.reset()

    async def close(self) -> None:
        await self.notifier.close()
