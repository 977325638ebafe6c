"""Alert timers: the digest (`%ALERT_DIGEST_SCHEDULE%`) and the tenant-level alerts, checked on
the poison watch's schedule (`%POISON_WATCH_SCHEDULE%`) so they go out within minutes.

With neither ALERT_SENDER nor ALERT_CHANNELS both return at once (alerts off, logged once per
worker); with channels only, alerts are posted to the channels without mail."""

from __future__ import annotations

import azure.functions as func

from functions.running import run_job
from shared.platform.logging import bind_invocation

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%ALERT_DIGEST_SCHEDULE%", run_on_startup=False)
def alert_digest(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.alerts.digest import run_digest  # noqa: PLC0415 - on first use

    run_job(run_digest)


@bp.timer_trigger(arg_name="timer", schedule="%POISON_WATCH_SCHEDULE%", run_on_startup=False)
def tenant_alerts(timer: func.TimerRequest, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.tenant_alerts import send_tenant_alerts  # noqa: PLC0415 - on first use

    run_job(send_tenant_alerts)
