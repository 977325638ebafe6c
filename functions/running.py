"""Shared by the handlers: build the services on first use and run the job with them.

Each handler binds its invocation first (a test checks it), then imports its job and hands it
here; the services (and each job's module) are imported on first use, not at cold start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from shared.platform.logging import bind_correlation
from shared.ports.messages import Message

if TYPE_CHECKING:
    from shared.service.services import Services

M = TypeVar("M", bound=Message)


async def run_job(job: Callable[[Services], Awaitable[object]]) -> None:
    """A timer's job, run with the app's services."""
    from shared.bootstrap import services  # noqa: PLC0415 - on first use (not at cold start)

    await job(services())


async def run_on_message(
    decode: Callable[[], M],
    job: Callable[[Services, M], Awaitable[object]],
) -> None:
    """A queue message's job: decoded, then run with the app's services under its correlation id."""
    from shared.bootstrap import services  # noqa: PLC0415 - on first use (not at cold start)

    message = decode()
    with bind_correlation(message.correlation_id):
        await job(services(), message)
