"""What one function run is, to the host and to the function: the invocation record, the
`context` the worker passes, output-binding holders and the values a queue output accepts."""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func


@dataclass
class Invocation:
    """One function run, as the invocation log records it."""

    id: str
    function: str
    trigger: str  # "http" | "queue" | "timer"
    started: datetime
    ended: datetime | None = None
    outcome: str = "running"  # "running" | "succeeded" | "failed"
    error: str | None = None
    dequeue_count: int | None = None
    past_due: bool | None = None
    status_code: int | None = None
    poisoned: bool = False

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended is None else self.ended - self.started


class OutputValue(func.Out[Any]):
    """An output binding value holder (`out.set(...)`), like the worker's."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class InvocationContext(func.Context):
    """The `context` the Functions host passes a handler: the invocation id and function name."""

    def __init__(self, function_name: str, invocation_id: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(Path.cwd())

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def now() -> datetime:
    return datetime.now(UTC)


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def queue_payloads(value: Any, where: str) -> list[bytes]:
    """What a queue output binding accepts: str, bytes, a QueueMessage or a list of those."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.encode("utf-8")]
    if isinstance(value, bytes | bytearray):
        return [bytes(value)]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, list | tuple):
        return [p for item in value for p in queue_payloads(item, where)]
    raise TypeError(
        f"{where}: a queue output takes str, bytes or a list of them, not {type(value)}"
    )
