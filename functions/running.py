"""Shared by the handlers: bind the invocation, build the services on first use, run the job.

The services (and each job's module) are imported on first use, not at cold start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import azure.functions as func

from shared.platform.logging import bind_correlation, bind_invocation
from shared.ports.messages import Message

if TYPE_CHECKING:
    from shared.service.services import Services

M = TypeVar("M", bound=Message)


async def run_job(context: func.Context, job: Callable[[Services], Awaitable[object]]) -> None:
    """A timer's job, run with the app's services."""
    bind_invocation(context)
    from shared.bootstrap import services  # noqa: PLC0415 - on first use (not at cold start)

    await job(services())


async def run_on_message(
    context: func.Context,
    decode: Callable[[], M],
    job: Callable[[Services, M], Awaitable[object]],
) -> None:
    """A queue message's job: decoded, then run with the app's services under its correlation id."""
    bind_invocation(context)
    from shared.bootstrap import services  # noqa: PLC0415 - on first use (not at cold start)

    message = decode()
    with bind_correlation(message.correlation_id):
        await job(services(), message)
