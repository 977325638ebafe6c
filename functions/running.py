"""Shared by the handlers: run a job with the app's services on this thread's own event loop.

Every handler is synchronous, so the Functions host runs it in its thread pool
(`PYTHON_THREADPOOL_THREAD_COUNT`, set to host.json's queue `batchSize` in infra/). A job's
Graph calls are async; its storage calls are the Azure SDK's synchronous clients. Each pool
thread runs its jobs on an event loop of its own, kept for the thread's life (so its Graph
client's connections are reused): a slow storage call blocks its own invocation only, never
the others nor the host's HTTP answers. `shared.bootstrap.services()` gives each thread its own
Graph client over the worker's one credential and shared storage clients.

Each handler binds its invocation first (a test checks it), then imports its job and hands it
here; the services (and each job's module) are imported on first use, not at cold start. A
timer whose whole work is one service job is one row (`add_timer_job`).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import azure.functions as func

from shared.platform.logging import bind_correlation, bind_invocation, get_logger
from shared.ports.messages import Message, ReprocessUser

if TYPE_CHECKING:
    from shared.service.services import Services

M = TypeVar("M", bound=Message)
T = TypeVar("T")

_this_thread = threading.local()
log = get_logger(__name__)


def run_job(job: Callable[[Services], Coroutine[Any, Any, T]]) -> T:
    """A job (a timer's, a webhook's) run with the app's services on this thread's event loop
    (made on the thread's first job).

    It runs in a copy of the caller's context, so what the handler bound for logging
    (`bind_invocation`, `bind_correlation`) is on every event the job logs."""
    from shared.bootstrap import services  # noqa: PLC0415 - on first use (not at cold start)

    runner: asyncio.Runner | None = getattr(_this_thread, "runner", None)
    if runner is None:
        runner = _this_thread.runner = asyncio.Runner()
    return runner.run(job(services()), context=contextvars.copy_context())


def run_on_message(
    decode: Callable[[], M],
    job: Callable[[Services, M], Coroutine[Any, Any, object]],
) -> None:
    """A queue message's job: decoded, then run with the app's services under its correlation id
    (and a reprocess's user id, `_subject`; a throttled one goes back on its queue for after
    Retry-After: `shared.service.throttled`). A failure is logged (`queue.message_failed`)
    under those ids, then raised."""
    from shared.service.throttled import requeued_when_throttled  # noqa: PLC0415 - on first use

    message = decode()
    with bind_correlation(message.correlation_id, **_subject(message)):
        try:
            run_job(lambda svc: requeued_when_throttled(svc, message, job))
        except Exception as exc:
            # The worker hands the exception to the host, whose record of the failure has the
            # invocation id only: the poison runbook finds the failure by its correlation id.
            log.exception("queue.message_failed", message_type=type(message).__name__,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            raise


def _subject(message: Message) -> dict[str, str]:
    """What every trace of the message's job carries besides its correlation id: a reprocess's
    user, since a run's reprocess messages (one per user) share the run's correlation id."""
    return {"user_id": message.user_id} if isinstance(message, ReprocessUser) else {}


def add_timer_job(bp: func.Blueprint, name: str, schedule_setting: str, job: str) -> None:
    """Register the timer function `name` on `bp`: on the schedule the required setting
    `schedule_setting` holds, never on startup (that would also fire on every scale-out), it
    runs the service job `job`, "module:function" under `shared.service`, imported on first use."""
    module, _, function = job.partition(":")

    def handler(timer: func.TimerRequest, context: func.Context) -> None:
        bind_invocation(context)
        run_job(getattr(importlib.import_module(f"shared.service.{module}"), function))

    trigger = bp.timer_trigger(
        arg_name="timer", schedule=f"%{schedule_setting}%", run_on_startup=False
    )
    bp.function_name(name)(trigger(handler))
