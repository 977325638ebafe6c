"""What sending an alert means on every path (the mail and each alert channel): the outcome
statuses, the number of attempts and the wait between them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

Sleep = Callable[[float], Awaitable[None]]

ATTEMPTS: Final = 3
MAX_WAIT_SECONDS: Final = 60.0

SENT: Final = "sent"
POSTED: Final = "posted"
"""No mail (ALERT_SENDER unset), but the alert channels took it: delivered all the same."""
ALREADY_SENT: Final = "already-sent"
SENDING: Final = "sending"
"""Another run (a timer fired twice, a second instance) claimed the same findings moments ago
under its own id and is sending them: this run sends nothing and marks nothing."""
FAILED: Final = "failed"


def retry_wait(attempt: int, retry_after: float | None) -> float:
    """Seconds before attempt `attempt + 1`: Retry-After when given, else 2**attempt; capped."""
    wait = retry_after if retry_after is not None else 2.0**attempt
    return min(max(0.0, wait), MAX_WAIT_SECONDS)
