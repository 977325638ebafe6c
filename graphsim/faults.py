"""Seeded fault injection for Graph requests: 429s, 503s, dropped connections and latency.

A "reset" sends the response head (with a Content-Length) and then raises, so under uvicorn the
client sees the connection drop mid-response (httpx.RemoteProtocolError / ReadError); through
httpx.ASGITransport the exception surfaces in the caller.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SimulatedResetError(ConnectionResetError):
    """Raised mid-response to simulate a connection reset."""


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_reset: float = 0.0
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
            "latencyMs": self.latency_ms,
            "latencyRate": self.latency_rate,
            "retryAfter": self.retry_after,
            "seed": self.seed,
        }

    def pick(self) -> str | None:
        """One of '429', '503', 'reset' or None, drawn from the seeded generator."""
        if not (self.rate_429 or self.rate_503 or self.rate_reset):
            return None
        roll = self.rng.random()
        if roll < self.rate_reset:
            return "reset"
        roll -= self.rate_reset
        if roll < self.rate_429:
            return "429"
        roll -= self.rate_429
        if roll < self.rate_503:
            return "503"
        return None

    def latency(self) -> float:
        """Seconds to sleep before answering (0 when no latency is configured)."""
        if self.latency_ms <= 0:
            return 0.0
        if self.latency_rate < 1.0 and self.rng.random() >= self.latency_rate:
            return 0.0
        return self.latency_ms / 1000.0
