"""Timers: keep the subscription, poll directory sync, re-check errors, watch the poison queues.

Schedules come from settings (`%NAME%` has no default: every schedule must be set wherever
the app runs). `run_on_startup` stays off: it would also fire on every scale-out.
"""

from __future__ import annotations

import azure.functions as func

from functions.running import add_timer_job

bp = func.Blueprint()

for name, schedule_setting, job in (
    ("subscription_keeper", "SUBSCRIPTION_KEEPER_SCHEDULE", "subscriptions:keep_subscription"),
    ("sync_watch", "SYNC_WATCH_SCHEDULE", "watch:watch_sync"),
    ("recheck_errors", "RECHECK_ERRORS_SCHEDULE", "watch:recheck_errors"),
    ("poison_watch", "POISON_WATCH_SCHEDULE", "tenant_alerts:watch_poison_and_alert"),
):
    add_timer_job(bp, name, schedule_setting, job)
