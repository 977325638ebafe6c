"""What every service call needs, in one object: settings, every port, the clock and caches.

Built once per worker by `shared.bootstrap` (the composition root); tests build one from fakes
(`FakeDirectory`, in-memory queues and tables) and register it, so no handler is patched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from shared.platform.settings import Settings
from shared.ports.blobs import BlobStore
from shared.ports.directory import Directory
from shared.ports.messages import Message
from shared.ports.queues import Queues
from shared.ports.tables import Tables

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600
"""Azure Queue storage refuses a visibility timeout beyond seven days."""


class CrashPoints(Protocol):
    """What `shared.service.crashpoints.crash_point` reports to: tests raise here; production
    does nothing."""

    def reached(self, name: str) -> None: ...


class NoCrashes:
    """Production: crash points cost one dictionary look-up and do nothing."""

    def reached(self, name: str) -> None:
        return None


NO_CRASHES: Final = NoCrashes()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerCaches:
    """Per-worker memory, one typed field per use; never the source of truth (a cold worker
    starts empty and reads again)."""

    unlicensed_groups: dict[str, datetime] = field(default_factory=dict)
    """Groups seen without licenses, and when (`shared.service.groups`)."""
    skus_not_listed: dict[str, datetime] = field(default_factory=dict)
    """SKU ids a fresh subscribedSkus read did not list, and when (`shared.service.user_reads`)."""
    subscription_ids: tuple[float, set[str]] | None = None
    """Our subscription ids and the monotonic time they were read (notification intake)."""
    alerts_disabled_logged: bool = False
    tenant_name: str | None = None
    alert_domains_checked: bool = False


@dataclass
class Services:
    settings: Settings
    directory: Directory
    queues: Queues
    tables: Tables
    blobs: BlobStore
    """The reports container (nightly reports, history, the health page)."""
    clock: Callable[[], datetime] = utc_now
    caches: WorkerCaches = field(default_factory=WorkerCaches)
    crash_points: CrashPoints = NO_CRASHES
    """Between the steps of every handler (`shared.service.crashpoints`); tests register one
    that raises at a named point, production does nothing."""

    def now(self) -> datetime:
        return self.clock()

    def send(self, msg: Message, *, delay_seconds: float = 0) -> None:
        """Enqueue a message on the queue its type travels on, optionally delayed."""
        delay = min(int(max(0.0, delay_seconds) + 0.999), MAX_VISIBILITY_SECONDS)
        self.queues.send(msg, visibility_timeout=delay or None)

    def send_all(self, msgs: Sequence[Message]) -> int:
        """Enqueue each message at once, in order; how many were sent."""
        for msg in msgs:
            self.send(msg)
        return len(msgs)
