"""`PendingRetries`: when each user's delayed recompute is due (table `servicestate`,
partition `retry`, one row per user who ever waited).

Every recompute of a waiting user (its own retry, the errors re-check, a group change, a
manual run) decides a retry; without this record each sent its own delayed message and extra
triggers started parallel retry chains. The row is written after the message is sent: a crash
in between sends the next trigger's retry too (a duplicate, harmless), never strands the user.
A retry message lost after its row was written (a poisoned message, a queue emptied) leaves no
chain until the row's due time passes: the next recompute of the user sends one again, and the
nightly reconciliation recomputes every user anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from shared.ports.tables import EntityStore

RETRY_PK: Final = "retry"
DUE_SLACK: Final = timedelta(minutes=1)
"""A pending retry due at most this much later than a new one wanted still serves it (delays
are rounded up to the next whole minute, so two triggers' dues differ by up to one)."""


class PendingRetries:
    """The due time of each user's last sent delayed recompute."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def covered(self, user_id: str, due: datetime, now: datetime) -> bool:
        """Whether a retry already sent for the user serves one due at `due`: it is still to
        come (not the one being handled now, even if delivered a little early) and not later
        than `due` (plus `DUE_SLACK`)."""
        row = self._table.get(RETRY_PK, user_id)
        sent = row.fields.get("dueAt") if row else None
        if not isinstance(sent, datetime):
            return False
        return now + DUE_SLACK < sent <= due + DUE_SLACK

    def record(self, user_id: str, due: datetime) -> None:
        self._table.upsert(RETRY_PK, user_id, {"dueAt": due})
