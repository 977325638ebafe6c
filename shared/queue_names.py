"""The Storage queue names: shared by the queue adapter and the triggers that bind to them.

Their own module so that declaring a queue trigger does not import the Storage SDK (every
cold start would pay for it, the webhook's included).
"""

from __future__ import annotations

from typing import Final

GROUPS_CHANGED: Final = "groups-changed"
RECOMPUTE_USERS: Final = "recompute-users"
REPROCESS_USER: Final = "reprocess-user"
SYNC_COMPLETED: Final = "sync-completed"
QUEUE_NAMES: Final = (GROUPS_CHANGED, RECOMPUTE_USERS, REPROCESS_USER, SYNC_COMPLETED)
POISON_SUFFIX: Final = "-poison"
