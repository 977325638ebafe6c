"""`PendingRetries`: when each user's delayed recompute is due (table `servicestate`,
partition `retry`, one row per user whose retry is to come or came lately).

Every recompute of a waiting user (its own retry, the errors re-check, a group change, a
manual run) decides a retry; without this record each sent its own delayed message and extra
triggers started parallel retry chains. The row is written after the message is sent: a crash
in between sends the next trigger's retry too (a duplicate, harmless), never strands the user.
A retry message lost after its row was written (a poisoned message, a queue emptied) leaves no
chain until the row's due time passes: the next recompute of the user sends one again, and the
nightly reconciliation recomputes every user anyway.

A retry message carries its due time (`RecomputeUsers.due_at`). One handled more than
`DUE_SLACK` before it (the handling instance's clock behind the sender's) would read its own row
as a retry still to come, send none, and so end the user's chain: it is sent again for its due
time instead (`early_by`). Each such round needs an instance further behind than the last one,
and a due time further ahead than `LONGEST_WAIT` is not believed: the rounds are bounded.

A row whose retry is long past due (`PRUNE_AFTER`) serves no decision (`covered` reads only
a retry still to come): the nightly finish deletes it (`prune`), each over the row as read, so
a retry recorded meanwhile for the same user keeps its row. A crash midway leaves the rest to
the next night.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

from shared.ports.tables import Entity, EntityStore
from shared.service.stores.contention import delete_as_read

RETRY_PK: Final = "retry"
DUE_SLACK: Final = timedelta(minutes=1)
"""A pending retry due at most this much later than a new one wanted still serves it (delays
are rounded up to the next whole minute, so two triggers' dues differ by up to one)."""
LONGEST_WAIT: Final = timedelta(hours=25)
"""No retry is sent further ahead than the policy's longest wait (its backoff cap, a day) and
the rounding: a message due later than this is from a clock far off, handled at once."""
PRUNE_AFTER: Final = timedelta(hours=1)
"""A row due longer ago than this is pruned: far more than the clocks of two instances differ,
so no instance still reads its retry as to come."""


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

    def prune(self, now: datetime) -> int:
        """Delete the rows whose retry was due more than `PRUNE_AFTER` before `now` (or whose
        due time is unreadable); how many. A row rewritten meanwhile is left."""

        def long_past(row: Entity) -> bool:
            due = row.fields.get("dueAt")
            return not (isinstance(due, datetime) and due > now - PRUNE_AFTER)

        return delete_as_read(self._table, filter(long_past, self._table.query(RETRY_PK)))


def early_by(due_at: str | None, now: datetime) -> int:
    """Whole seconds until a retry message's due time when it is handled more than `DUE_SLACK`
    before it; 0 when it is on time, has no due time, or one not believed (`LONGEST_WAIT`)."""
    if due_at is None:
        return 0
    early = datetime.fromisoformat(due_at) - now
    if early <= DUE_SLACK or early > LONGEST_WAIT:
        return 0
    return math.ceil(early.total_seconds())
