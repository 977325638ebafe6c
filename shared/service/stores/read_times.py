"""When a row's data was read from Graph (`readAt`): what lets a later read's row stand.

A run that read a user before a change may write after a run that read after it (a slow
recompute message, a nightly page evaluated against memberships read when its run started).
Rows written from a read keep its time, and a writer from an earlier read leaves them as they
are (the findings ledger, the data-loss guard's capability records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from shared.ports.tables import Entity

READ_AT: Final = "readAt"


def written_after(entity: Entity, read_at: datetime | None) -> bool:
    """Whether `entity` was written from a later read of Graph than `read_at` (None: not
    known; a row without the field, written before it existed or by a job that read nothing,
    counts as older)."""
    written_from = entity.fields.get(READ_AT)
    return read_at is not None and isinstance(written_from, datetime) and written_from > read_at
