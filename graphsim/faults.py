"""Seeded fault injection for Graph requests: 429s, 503s, dropped connections and latency.

Before the handler: `429`, `503`, `reset` (nothing was done). After the handler: `applyReset`
and `apply503` - the request WAS carried out (a write is applied, counted and audited), then
the connection drops or a 503 comes back, as when a gateway loses Graph's answer. A client that
simply retries those writes does them twice; that is what they are for.

A "reset" sends the response head (with a Content-Length) and then raises, so under uvicorn the
client sees the connection drop mid-response (httpx.RemoteProtocolError / ReadError); through
httpx.ASGITransport the exception surfaces in the caller.

Rates draw from a seeded generator; `next` (a list of fault names, "none" for a clean answer)
scripts the faults of the next requests exactly, for deterministic tests.

`emptyFirstPages` (route templates, e.g. `["/users"]`): the first page of those collections
answers no items and a nextLink to the real first page, as Graph may (a page "may contain zero
results"; learn.microsoft.com/graph/paging). A client must follow the link.

`stuckPages` and `endlessPages` (route templates): a page asked by a nextLink ($skiptoken)
answers no items and a nextLink that never ends, as a misbehaving server (or a stuck page)
would: `stuckPages` links back to the very URL it was asked by, `endlessPages` to a new URL each
time (the same query with `simPage` counting up), `cyclingPages` to one of two URLs in turn
(`simPage` 1, then 2, then 1 again: A -> B -> A), a cycle longer than one page that a client
checking only for a page naming itself never leaves. A client that follows nextLinks without
a check never finishes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import apply_settings, current_settings, setting

KINDS = ("429", "503", "reset", "applyReset", "apply503")
AFTER_HANDLER = frozenset({"applyReset", "apply503"})


class SimulatedResetError(ConnectionResetError):
    """Raised mid-response to simulate a connection reset."""


def _templates(paths: list[Any] | None) -> list[str]:
    """`emptyFirstPages`: route templates, as graphsim counts requests (`/users`)."""
    return [str(p) for p in paths or []]


def _script(names: list[Any] | None) -> list[str]:
    """`next`: the faults of the next requests, in order ("none": a clean answer)."""
    scripted = [str(k) for k in names or []]
    unknown = set(scripted) - {*KINDS, "none"}
    if unknown:
        raise ValueError(f"unknown fault(s) in next: {sorted(unknown)}")
    return scripted


@dataclass
class Faults:
    rate_429: float = setting("rate429", float, default=0.0)
    rate_503: float = setting("rate503", float, default=0.0)
    rate_reset: float = setting("resetRate", float, default=0.0)
    rate_apply_reset: float = setting("applyResetRate", float, default=0.0)
    rate_apply_503: float = setting("apply503Rate", float, default=0.0)
    writes_only: bool = setting("writesOnly", bool, default=False)
    """Inject only into writes (POST/PATCH/PUT/DELETE), reads answer normally."""
    scripted: list[str] = setting("next", _script, default_factory=list)  # noqa: RUF009 - a field
    empty_first_pages: list[str] = setting(  # noqa: RUF009 - a field
        "emptyFirstPages", _templates, default_factory=list
    )
    """Collections (route templates) whose first page answers no items and a nextLink."""
    stuck_pages: list[str] = setting(  # noqa: RUF009 - a field
        "stuckPages", _templates, default_factory=list
    )
    """Collections whose pages asked by a nextLink answer no items and that same URL again."""
    endless_pages: list[str] = setting(  # noqa: RUF009 - a field
        "endlessPages", _templates, default_factory=list
    )
    """Collections whose pages asked by a nextLink answer no items and a new nextLink."""
    cycling_pages: list[str] = setting(  # noqa: RUF009 - a field
        "cyclingPages", _templates, default_factory=list
    )
    """Collections whose pages asked by a nextLink answer no items and a nextLink to one of
    two pages in turn (A -> B -> A)."""
    latency_ms: float = setting("latencyMs", float, default=0.0)
    latency_rate: float = setting("latencyRate", float, default=1.0)
    retry_after: float = setting("retryAfter", float, default=1)
    """Seconds in the Retry-After of fault 429s/503s; Graph's may be fractional ("2.128")."""
    seed: int = setting("seed", int, default=0)
    rng: random.Random = field(default_factory=random.Random)  # seeded simulation only

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], seed: int) -> Faults:
        f = cls(seed=seed)
        f.configure(cfg)
        return f

    def configure(self, cfg: Mapping[str, Any]) -> None:
        apply_settings(self, cfg)
        self.rng.seed(self.seed)

    def describe(self) -> dict[str, Any]:
        return current_settings(self) | {
            "next": list(self.scripted),
            "emptyFirstPages": list(self.empty_first_pages),
            "stuckPages": list(self.stuck_pages),
            "endlessPages": list(self.endless_pages),
            "cyclingPages": list(self.cycling_pages),
        }

    def pick(self, method: str = "GET") -> str | None:
        """One of KINDS or None: the next scripted fault, else drawn from the seeded generator."""
        if self.writes_only and method.upper() in ("GET", "HEAD"):
            return None
        if self.scripted:
            kind = self.scripted.pop(0)
            return None if kind == "none" else kind
        rates = (
            ("reset", self.rate_reset),
            ("429", self.rate_429),
            ("503", self.rate_503),
            ("applyReset", self.rate_apply_reset),
            ("apply503", self.rate_apply_503),
        )
        if not any(rate for _, rate in rates):
            return None
        roll = self.rng.random()
        for kind, rate in rates:
            if roll < rate:
                return kind
            roll -= rate
        return None

    def latency(self) -> float:
        """Seconds to sleep before answering (0 when no latency is configured)."""
        if self.latency_ms <= 0:
            return 0.0
        if self.latency_rate < 1.0 and self.rng.random() >= self.latency_rate:
            return 0.0
        return self.latency_ms / 1000.0
