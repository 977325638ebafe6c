"""Alert timers: the digest (`%ALERT_DIGEST_SCHEDULE%`) and the tenant-level alerts, checked on
the poison watch's schedule (`%POISON_WATCH_SCHEDULE%`) so they go out within minutes.

Without ALERT_SENDER both return at once (alerts disabled, logged once per worker)."""

from __future__ import annotations

import azure.functions as func

from functions.running import run_job
from shared.platform.logging import bind_invocation

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%ALERT_DIGEST_SCHEDULE%", run_on_startup=False)
async def alert_digest(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.alerts.jobs import run_digest  # noqa: PLC0415 - on first use

    await run_job(run_digest)


@bp.timer_trigger(arg_name="timer", schedule="%POISON_WATCH_SCHEDULE%", run_on_startup=False)
async def tenant_alerts(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.alerts.tenant import send_tenant_alerts  # noqa: PLC0415 - on first use

    await run_job(send_tenant_alerts)
