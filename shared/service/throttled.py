"""A queue message whose job Graph throttled goes back on its queue for after Retry-After.

The host retries a failed message after host.json's `visibilityTimeout` (30 s), whatever
Retry-After said, and moves it to `-poison` after `maxDequeueCount` (5) failures: about two
and a half minutes of throttling (a sync burst, a big tenant's nightly) would poison every
group change and recompute in flight. So a 429 (or a 503 naming a Retry-After) that reaches
the job (Graph's retry handler gave up, or Retry-After was longer than a handler may sleep)
re-sends the message, delayed by Retry-After, and completes the original: throttling costs no
dequeue attempt. A duplicate run is harmless (every job is safe to run again,
docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from shared.ports.directory import DirectoryError
from shared.ports.messages import Message
from shared.service.services import Services

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=Message)

DEFAULT_RETRY_AFTER = 30.0
"""Seconds to wait when a 429 names no Retry-After."""


async def requeued_when_throttled(
    svc: Services, msg: M, job: Callable[[Services, M], Coroutine[Any, Any, object]]
) -> object:
    """`job(svc, msg)`; on a 429 (or a 503 with Retry-After), `msg` is sent again for after
    Retry-After (None returned)."""
    try:
        return await job(svc, msg)
    except DirectoryError as exc:
        if not asks_to_wait(exc):
            raise
        delay = send_again_after(svc, msg, exc)
        log.warning("queue.throttled", correlation_id=msg.correlation_id,
                    message=type(msg).__name__, retry_after=delay)  # fmt: skip
        return None


def asks_to_wait(exc: DirectoryError) -> bool:
    """A 429, or a 503 that names a Retry-After (Graph overloaded; what batch items still
    unavailable after their re-sends raise): Graph said when to come back. A 5xx without one
    is left to the host's retries."""
    return exc.status == 429 or (exc.status == 503 and exc.retry_after is not None)


def send_again_after(svc: Services, msg: Message, throttled: DirectoryError) -> float:
    """Send `msg` again for after the 429's Retry-After (30 s if it named none); the delay."""
    delay = throttled.retry_after or DEFAULT_RETRY_AFTER
    svc.send(msg, delay_seconds=delay)
    return delay
