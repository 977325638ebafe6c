"""The service's structured log events, captured in memory for a scenario to read: the app
configures its own logging (JSON on the root logger's handlers, as under the Functions worker),
and `EventCapture` is the root logger's one handler meanwhile."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

SERVICE_LOGGERS = ("shared", "functions")
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class EventCapture(logging.Handler):
    """Keeps the service's structlog events (JSON lines) in memory, oldest first."""

    def __init__(self, prefixes: tuple[str, ...] = SERVICE_LOGGERS) -> None:
        super().__init__(logging.INFO)
        self.prefixes = prefixes
        self._events: list[dict[str, Any]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(self.prefixes):
            return
        try:
            event = json.loads(self.format(record))
        except (ValueError, TypeError):  # before the app configured its logging
            event = _from_record(record)
        if isinstance(event, dict):
            event.setdefault("logger", record.name)
            with self._guard:
                self._events.append(event)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._guard:
            return list(self._events)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def clear(self) -> None:
        with self._guard:
            self._events.clear()


@contextlib.contextmanager
def captured_service_logs() -> Iterator[EventCapture]:
    """Route the service's structured logs to an `EventCapture` (and nowhere else) for the
    duration: the root logger gets only the capture handler, Azure SDK chatter is muted. The
    app formats the root logger's handlers as JSON when it builds its services."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quiet = {name: logging.getLogger(name) for name in ("azure", "httpx", "uvicorn")}
    quiet_levels = {name: lg.level for name, lg in quiet.items()}
    capture = EventCapture()
    for handler in saved[0]:
        root.removeHandler(handler)
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    for lg in quiet.values():
        lg.setLevel(logging.WARNING)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, lg in quiet.items():
            lg.setLevel(quiet_levels[name])


def _from_record(record: logging.LogRecord) -> dict[str, Any]:
    """The event a plain record stands for: its message and its extra fields."""
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat()
    return extra | {
        "event": record.getMessage(),
        "level": record.levelname.lower(),
        "timestamp": stamp,
    }
