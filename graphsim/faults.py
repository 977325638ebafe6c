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
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("429", "503", "reset", "applyReset", "apply503")
AFTER_HANDLER = frozenset({"applyReset", "apply503"})


class SimulatedResetError(ConnectionResetError):
    """Raised mid-response to simulate a connection reset."""


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_reset: float = 0.0
    rate_apply_reset: float = 0.0
    rate_apply_503: float = 0.0
    writes_only: bool = False
    """Inject only into writes (POST/PATCH/PUT/DELETE), reads answer normally."""
    scripted: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    latency_rate: float = 1.0
    retry_after: int = 1
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)  # seeded simulation only

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], seed: int) -> Faults:
        f = cls(seed=seed)
        f.configure(cfg)
        return f

    def configure(self, cfg: Mapping[str, Any]) -> None:
        self.rate_429 = float(cfg.get("rate429", self.rate_429))
        self.rate_503 = float(cfg.get("rate503", self.rate_503))
        self.rate_reset = float(cfg.get("resetRate", self.rate_reset))
        self.rate_apply_reset = float(cfg.get("applyResetRate", self.rate_apply_reset))
        self.rate_apply_503 = float(cfg.get("apply503Rate", self.rate_apply_503))
        self.writes_only = bool(cfg.get("writesOnly", self.writes_only))
        if "next" in cfg:
            scripted = [str(k) for k in cfg["next"] or []]
            unknown = set(scripted) - {*KINDS, "none"}
            if unknown:
                raise ValueError(f"unknown fault(s) in next: {sorted(unknown)}")
            self.scripted = scripted
        self.latency_ms = float(cfg.get("latencyMs", self.latency_ms))
        self.latency_rate = float(cfg.get("latencyRate", self.latency_rate))
        self.retry_after = int(cfg.get("retryAfter", self.retry_after))
        if "seed" in cfg:
            self.seed = int(cfg["seed"])
        self.rng.seed(self.seed)

    def describe(self) -> dict[str, Any]:
        return {
            "rate429": self.rate_429,
            "rate503": self.rate_503,
            "resetRate": self.rate_reset,
            "applyResetRate": self.rate_apply_reset,
            "apply503Rate": self.rate_apply_503,
            "writesOnly": self.writes_only,
            "next": list(self.scripted),
            "latencyMs": self.latency_ms,
            "latencyRate": self.latency_rate,
            "retryAfter": self.retry_after,
            "seed": self.seed,
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
