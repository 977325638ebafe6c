"""Which users the errors re-check recomputes for their pending, stale or plan-mismatch
findings (`shared.service.watch.recheck_errors`), and how often.

* The group finished processing (ProcessingComplete): a finding not looked at since the
  re-check first saw the group finished is recomputed at once (that is the point: the policy
  reprocesses it now). After that, a finding that stays open (the reprocess did not clear it,
  or writes are not allowed) is looked at after a wait as long as it was last looked at after
  the latest of that moment, its first sighting and its reprocess queued, 15 minutes at least
  and 4 hours at most, the processing wait's rhythm (15, 15, 30, 60 ... 240 minutes): before,
  it was recomputed at every run (every 15 minutes) for as long as it stayed open.
* The group reports no state (or lost its licenses): hourly after the finding was last seen.
* Still processing: not here; the user's own retry chain waits for the group.

When the re-check first saw each group finished is kept in `servicestate` (partition
`finished`, one row per finished licensed group; `FinishedGroups`), written at the end of the
run with its other writes: a run that died before finds the groups finished anew and
recomputes their users again (a duplicate, never none). A group no longer finished loses its
row, so its next finish is seen as one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final

from shared.core.reprocess import PROCESSING_COMPLETE
from shared.core.reprocess_plan import BACKOFF_BASE
from shared.ports.tables import ConcurrencyConflict, Entity, EntityStore

FINISHED_PK: Final = "finished"
UNKNOWN_STATE_RECHECK: Final = timedelta(hours=1)
FINISHED_WAIT_CAP: Final = timedelta(hours=4)
"""The longest wait between looks at a finding whose group finished (`TenantFacts`'s
`processing_wait_cap`)."""
RECHECK_SLACK: Final = timedelta(minutes=5)
"""A look is due this much before its wait is over: the recompute that looked ran a little
after the re-check that sent it, and the next re-check must not miss it by seconds."""


class FinishedGroups:
    """When the errors re-check first saw each licensed group ProcessingComplete."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def since(self, processing: Mapping[str, str | None], now: datetime) -> dict[str, datetime]:
        """Each group finished now, with the moment it was first seen so (now, for one not
        seen finished before)."""
        stored = {e.row_key: e.fields.get("since") for e in self._table.query(FINISHED_PK)}
        return {
            group_id: seen if isinstance(seen := stored.get(group_id), datetime) else now
            for group_id, state in processing.items()
            if state == PROCESSING_COMPLETE
        }

    def save(self, finished: Mapping[str, datetime]) -> None:
        """Keep `finished` (from `since`): new rows written, rows of groups no longer
        finished deleted (each over the row as read)."""
        rows = {e.row_key: e for e in self._table.query(FINISHED_PK)}
        for group_id, since in finished.items():
            if group_id not in rows or rows[group_id].fields.get("since") != since:
                self._table.upsert(FINISHED_PK, group_id, {"since": since})
        for group_id, row in rows.items():
            if group_id not in finished:
                with contextlib.suppress(ConcurrencyConflict):
                    self._table.delete(FINISHED_PK, group_id, etag=row.etag)


def waiting_users(
    rows: Iterable[Entity],
    processing: Mapping[str, str | None],
    finished: Mapping[str, datetime],
    now: datetime,
) -> set[str]:
    """The users of these open findings' rows whose look is due (the module docstring)."""
    users = set()
    for row in rows:
        group_id = str(row.fields.get("groupId"))
        state = processing.get(group_id)
        if state == PROCESSING_COMPLETE:
            due = _finished_due(row, finished.get(group_id, now), now)
        else:
            due = state is None and _unknown_due(row, now)
        if due:
            users.add(row.partition_key)
    return users


def _finished_due(row: Entity, since: datetime, now: datetime) -> bool:
    seen = row.fields.get("lastSeen")
    if not isinstance(seen, datetime) or seen <= since:
        return True  # not looked at since the group finished
    later = (row.fields.get(name) for name in ("firstSeen", "reprocessQueuedAt"))
    start = max([since, *(at for at in later if isinstance(at, datetime))])
    wait = min(max(seen - start, BACKOFF_BASE), FINISHED_WAIT_CAP)
    return now + RECHECK_SLACK - seen >= wait


def _unknown_due(row: Entity, now: datetime) -> bool:
    """A group's state not reported (or the group unlicensed: re-read when it lost them) never
    turns complete: its waiting users re-read hourly after `lastSeen`, not every run."""
    seen = row.fields.get("lastSeen")
    return not isinstance(seen, datetime) or now - seen >= UNKNOWN_STATE_RECHECK
