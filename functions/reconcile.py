"""The nightly reconciliation timer: the safety net behind the event pipeline.

`%RECONCILE_SCHEDULE%` has no default (a required setting); `run_on_startup` stays off (it
would also fire on every scale-out). A late firing (`past_due`) still runs: a date's run is
done once, and an unfinished one resumes from its checkpoint.
"""

from __future__ import annotations

import azure.functions as func

from functions.running import run_job
from shared.platform.logging import bind_invocation

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
def reconcile_nightly(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.reconcile.nightly import run_nightly  # noqa: PLC0415 - on first use

    run_job(lambda services: run_nightly(services, past_due=bool(timer.past_due)))
