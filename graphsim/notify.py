"""Change-notification delivery: validation handshakes, basic group notifications, lifecycle
events, retries, and seeded drop/duplicate faults, all on background asyncio tasks.

Lifecycle timing: a `reauthorizationRequired` event is queued once per expiry value when the
simulated clock is within `lifecycleLeadMinutes` (default 60) of the subscription's
expirationDateTime; at expiry the subscription is removed (as Graph deletes unrenewed ones).
Retries use real-time backoff (a few seconds in total, bounded attempts) rather than Graph's
4 hours, so tests stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from .clock import iso, iso7, parse_iso
from .errors import GraphError
from .settings import apply_settings, current_settings, setting
from .state import SimState

Obj = dict[str, Any]
DELIVERY_TIMEOUT = 3.0
VALIDATION_TIMEOUT = 10.0
MAX_BATCH = 100


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for all deliveries (building one per client costs ~20 ms)."""
    return ssl.create_default_context()


def with_query(url: str, extra: Mapping[str, str]) -> str:
    """Append query parameters while keeping any existing ones (e.g. `?code=key`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def matches(resource: str, gid: str) -> bool:
    res = resource.strip().strip("/").lower()
    return res in ("groups", f"groups/{gid.lower()}", f"groups/{gid.lower()}/members")


def _backoff(seconds: list[Any]) -> list[float]:
    return [float(x) for x in seconds] or [0.0]


@dataclass(eq=False)  # a Notifier compares and hashes by identity
class DeliverySettings:
    """What /_sim/notifications sets: delivery on/off, seeded drop/duplicate faults, retries
    and how long before expiry a subscription is asked to reauthorize."""

    enabled: bool = setting("enabled", bool, default=True)
    drop_rate: float = setting("dropRate", float, default=0.0)
    duplicate_rate: float = setting("duplicateRate", float, default=0.0)
    max_attempts: int = setting("maxAttempts", int, default=4)
    backoff: list[float] = setting(  # noqa: RUF009 - a field
        "backoffSeconds", _backoff, default_factory=lambda: [0.2, 0.5, 1.0]
    )
    lead_minutes: float = setting("lifecycleLeadMinutes", float, default=60.0)


class Notifier(DeliverySettings):
    """Queues notifications per URL and posts them from background tasks."""

    def __init__(
        self, state: SimState, *, seed: int = 0, cfg: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.state = state
        state.on_group_change = self.group_changed
        self.rng = random.Random(seed)  # noqa: S311 - seeded simulation, not security
        self.seed = seed
        self.configure(cfg or {})
        self.pending: dict[str, list[Obj]] = {}
        self.flushing: dict[str, asyncio.Task[None]] = {}
        self.log: list[Obj] = []

    def configure(self, cfg: Mapping[str, Any]) -> None:
        apply_settings(self, cfg)
        if "seed" in cfg:
            self.seed = int(cfg["seed"])
            self.rng.seed(self.seed)

    def describe(self) -> Obj:
        return current_settings(self)

    def reset(self) -> None:
        self.pending.clear()
        self.log.clear()
        self.state.on_group_change = self.group_changed

    # ----------------------------------------------------------------- producing
    def group_changed(self, gid: str, change_type: str) -> None:
        for sub in list(self.state.subscriptions.values()):
            if not matches(sub["resource"], gid):
                continue
            kinds = {c.strip() for c in str(sub["changeType"]).split(",")}
            if change_type not in kinds:
                continue
            note = {
                "subscriptionId": sub["id"],
                "clientState": sub.get("clientState"),
                "changeType": change_type,
                "resource": f"Groups/{gid}",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Group",
                    "@odata.id": f"Groups/{gid}",
                    "id": gid,
                },
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "tenantId": self.state.tenant_id,
            }
            self._enqueue(sub["notificationUrl"], note)

    def _lifecycle(self, sid: str, sub: Obj, event: str) -> Obj:
        """A lifecycle notification for subscription `sid` (reauthorizationRequired, ...)."""
        return {
            "subscriptionId": sid,
            "subscriptionExpirationDateTime": sub["expirationDateTime"],
            "tenantId": self.state.tenant_id,
            "clientState": sub.get("clientState"),
            "lifecycleEvent": event,
        }

    def _enqueue(self, url: str, note: Obj) -> None:
        entry = {
            "time": iso(self.state.clock.now()),
            "url": url,
            "subscriptionId": note["subscriptionId"],
        }
        if not self.enabled:
            self.log.append(dict(entry, outcome="disabled"))
            return
        if self.drop_rate and self.rng.random() < self.drop_rate:
            self.log.append(dict(entry, outcome="dropped"))
            return
        copies = 2 if self.duplicate_rate and self.rng.random() < self.duplicate_rate else 1
        if copies == 2:
            self.log.append(dict(entry, outcome="duplicated"))
        for _ in range(copies):
            self.pending.setdefault(url, []).append(note)
        self._kick(url)

    def _kick(self, url: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # picked up by drain()
        if url not in self.flushing:
            self.flushing[url] = loop.create_task(self._flush(url))

    def check_lifecycle(self) -> None:
        """Expire subscriptions and queue reauthorizationRequired near expiry."""
        now = self.state.clock.now()
        for sid, sub in list(self.state.subscriptions.items()):
            expiry = parse_iso(sub["expirationDateTime"])
            if now >= expiry:
                del self.state.subscriptions[sid]
                self.log.append(
                    {
                        "time": iso(now),
                        "url": sub["notificationUrl"],
                        "subscriptionId": sid,
                        "outcome": "subscriptionExpired",
                    }
                )
                continue
            url = sub.get("lifecycleNotificationUrl")
            if (
                url
                and now >= expiry - timedelta(minutes=self.lead_minutes)
                and sub.get("_reauthFor") != sub["expirationDateTime"]
            ):
                sub["_reauthFor"] = sub["expirationDateTime"]
                self._enqueue(url, self._lifecycle(sid, sub, "reauthorizationRequired"))

    def remove_subscription(self, sid: str) -> Obj:
        """Graph removes a subscription (e.g. its app lost access) and says so with a
        `subscriptionRemoved` lifecycle notification, when the subscription has a URL for it."""
        sub = self.state.subscriptions.pop(sid, None)
        if sub is None:
            raise GraphError(404, "ResourceNotFound", f"No subscription '{sid}'.")
        url = sub.get("lifecycleNotificationUrl")
        if url:
            self._enqueue(url, self._lifecycle(sid, sub, "subscriptionRemoved"))
        return {"removed": sid, "notified": bool(url)}

    # ----------------------------------------------------------------- delivery
    async def _flush(self, url: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, verify=_tls()) as client:
                while self.pending.get(url):
                    batch = self.pending[url][:MAX_BATCH]
                    del self.pending[url][:MAX_BATCH]
                    await self._deliver(client, url, batch)
                self.pending.pop(url, None)
        finally:
            self.flushing.pop(url, None)
            if self.pending.get(url):
                self._kick(url)

    async def _deliver(self, client: httpx.AsyncClient, url: str, batch: list[Obj]) -> None:
        body = {"value": batch}
        sub_ids = sorted({n["subscriptionId"] for n in batch})
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            status: int | None = None
            error = ""
            try:
                resp = await client.post(url, json=body)
                status = resp.status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            elapsed = time.monotonic() - started
            ok = status is not None and 200 <= status < 300 and elapsed <= DELIVERY_TIMEOUT
            self.log.append(
                {
                    "time": iso(self.state.clock.now()),
                    "url": url,
                    "subscriptionIds": sub_ids,
                    "count": len(batch),
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "elapsedMs": round(elapsed * 1000, 1),
                    "outcome": "delivered" if ok else "failed",
                    "kinds": sorted(
                        {n.get("lifecycleEvent") or n.get("changeType", "") for n in batch}
                    ),
                }
            )
            if ok:
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(self.backoff[min(attempt - 1, len(self.backoff) - 1)])
        self.log.append(
            {
                "time": iso(self.state.clock.now()),
                "url": url,
                "subscriptionIds": sub_ids,
                "count": len(batch),
                "outcome": "discarded",
            }
        )

    def busy(self) -> bool:
        return bool(self.flushing) or any(self.pending.values())

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notification has been delivered or given up on."""
        deadline = time.monotonic() + timeout
        while self.busy():
            for url, items in list(self.pending.items()):
                if items and url not in self.flushing:
                    self._kick(url)
            tasks = list(self.flushing.values())
            if not tasks:
                await asyncio.sleep(0)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(tasks, timeout=remaining)
        return True

    async def close(self) -> None:
        for task in list(self.flushing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.flushing.clear()

    # ----------------------------------------------------------------- handshake
    async def validate(self, url: str) -> None:
        """Graph's validation request: POST url?validationToken=..., expect the token echoed."""
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        target = with_query(url, {"validationToken": token})
        try:
            async with httpx.AsyncClient(timeout=VALIDATION_TIMEOUT, verify=_tls()) as client:
                resp = await client.post(
                    target, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"}
                )
        except httpx.HTTPError as exc:
            raise validation_failed(f"{type(exc).__name__} while calling {url}") from None
        ctype = resp.headers.get("content-type", "")
        if resp.status_code != 200:
            raise validation_failed(f"Remote server returned '{resp.status_code}'")
        if not ctype.lower().startswith("text/plain"):
            raise validation_failed("Response content type must be text/plain")
        if resp.text != token:
            raise validation_failed("Response must exactly match validationToken query parameter.")
        self.log.append({"time": iso(self.state.clock.now()), "url": url, "outcome": "validated"})


def validation_failed(detail: str) -> GraphError:
    return GraphError(
        400,
        "InvalidRequest",
        f"Subscription validation request failed. {detail}",
    )


__all__ = ["Notifier", "iso7", "matches", "with_query"]
