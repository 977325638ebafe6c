"""What every service call needs, in one object: settings, Graph, queues, tables and the clock.

Built once per worker by `shared.bootstrap` (the composition root); tests build one from fakes
(`FakeDirectory`, in-memory queues and tables) and register it, so no handler is patched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.adapters.blobs import BlobStore
from shared.adapters.queues import Queues
from shared.adapters.tables import Tables
from shared.directory import Directory
from shared.messages import Message
from shared.service.crashpoints import NO_CRASHES, CrashPoints
from shared.settings import Settings

MAX_VISIBILITY_SECONDS = 7 * 24 * 3600
"""Azure Queue storage refuses a visibility timeout beyond seven days."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    directory: Directory
    queues: Queues
    tables: Tables
    clock: Callable[[], datetime] = utc_now
    caches: dict[str, object] = field(default_factory=dict)
    """Per-worker memory (e.g. recently seen unlicensed groups); never the source of truth."""
    blobs: BlobStore | None = None
    """The reports container; None: the nightly run opens it from the connection string."""
    crash_points: CrashPoints = NO_CRASHES
    """Between the steps of every handler (`shared.service.crashpoints`); tests register one
    that raises at a named point, production does nothing."""

    def now(self) -> datetime:
        return self.clock()

    def send(self, msg: Message, *, delay_seconds: float = 0) -> None:
        """Enqueue a message on the queue its type travels on, optionally delayed."""
        delay = min(int(max(0.0, delay_seconds) + 0.999), MAX_VISIBILITY_SECONDS)
        self.queues.send(msg, visibility_timeout=delay or None)
