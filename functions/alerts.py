"""Alert timers: the digest (`%ALERT_DIGEST_SCHEDULE%`) and the tenant-level alerts, checked on
the poison watch's schedule (`%POISON_WATCH_SCHEDULE%`) so they go out within minutes.

With neither ALERT_SENDER nor ALERT_CHANNELS both return at once (alerts off, logged once per
worker); with channels only, alerts are posted to the channels without mail."""

from __future__ import annotations

import azure.functions as func

from functions.running import add_timer_job

bp = func.Blueprint()

add_timer_job(bp, "alert_digest", "ALERT_DIGEST_SCHEDULE", "alerts.digest:run_digest")
add_timer_job(bp, "tenant_alerts", "POISON_WATCH_SCHEDULE", "tenant_alerts:send_tenant_alerts")
