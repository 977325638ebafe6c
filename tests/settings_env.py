"""The settings `Settings.from_env` requires besides the tenant and storage, as test environments
set them: the webhook URLs and client state, and the five timer schedules."""

from __future__ import annotations

WEBHOOK_ENV = {
    "NOTIFICATION_URL": "https://guard.example.net/api/notifications",
    "LIFECYCLE_NOTIFICATION_URL": "https://guard.example.net/api/lifecycle",
    "CLIENT_STATE": "sixteen-chars-or-more",
}

SCHEDULE_ENV = {
    "SUBSCRIPTION_KEEPER_SCHEDULE": "0 0 */6 * * *",
    "SYNC_WATCH_SCHEDULE": "0 */5 * * * *",
    "RECHECK_ERRORS_SCHEDULE": "0 15 * * * *",
    "POISON_WATCH_SCHEDULE": "0 */10 * * * *",
    "RECONCILE_SCHEDULE": "0 0 2 * * *",
}
