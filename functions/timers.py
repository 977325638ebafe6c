"""Timers: keep the subscription, poll directory sync, re-check errors, watch the poison queues.

Schedules come from settings (`%NAME%` has no default: every schedule must be set wherever
the app runs). `run_on_startup` stays off: it would also fire on every scale-out.
"""

from __future__ import annotations

import azure.functions as func

from functions.running import run_job
from shared.platform.logging import bind_invocation

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SUBSCRIPTION_KEEPER_SCHEDULE%", run_on_startup=False)
def subscription_keeper(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.subscriptions import keep_subscription  # noqa: PLC0415 - on first use

    run_job(keep_subscription)


@bp.timer_trigger(arg_name="timer", schedule="%SYNC_WATCH_SCHEDULE%", run_on_startup=False)
def sync_watch(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.watch import watch_sync  # noqa: PLC0415 - on first use

    run_job(watch_sync)


@bp.timer_trigger(arg_name="timer", schedule="%RECHECK_ERRORS_SCHEDULE%", run_on_startup=False)
def recheck_errors(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.watch import recheck_errors as recheck  # noqa: PLC0415 - on first use

    run_job(recheck)


@bp.timer_trigger(arg_name="timer", schedule="%POISON_WATCH_SCHEDULE%", run_on_startup=False)
def poison_watch(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.watch import run_poison_watch  # noqa: PLC0415 - on first use

    run_job(run_poison_watch)
