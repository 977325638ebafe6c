"""How often a read-change-write over a contended row is tried before the work is handed back.

Conditional writes (ETag, insert-if-absent) make two workers' changes to one row take turns:
the one that meets a conflict reads the row again and makes its change anew. A few turns settle
any real contention; a row still changing after that (or a store that answers every write with
a conflict) is not waited out in a loop that spends Storage transactions for as long as the
function may run: the conflict is raised, and the run's redelivery (a queue message, a timer's
next firing, the nightly page from its checkpoint) does the work again later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

from shared.ports.tables import AlreadyExists, ConcurrencyConflict, Entity, EntityStore

WRITE_ATTEMPTS: Final = 5

T = TypeVar("T")


def write_contended(attempt: Callable[[], T], tries: int = WRITE_ATTEMPTS) -> T:
    """`attempt()` (read the row, make the change, write it only over the row as read) again
    after each conflict, up to `tries` times; the last conflict is raised."""
    for _ in range(tries - 1):
        try:
            return attempt()
        except (AlreadyExists, ConcurrencyConflict):
            continue  # written meanwhile: read it again
    return attempt()


def delete_as_read(table: EntityStore, rows: Iterable[Entity]) -> int:
    """Delete each of `rows` only as it was read (over its ETag): one written meanwhile stands,
    for the next look to judge. The retention prunes' one way to delete; how many went."""
    deleted = 0
    for row in rows:
        with contextlib.suppress(ConcurrencyConflict):
            table.delete(row.partition_key, row.row_key, etag=row.etag)
            deleted += 1
    return deleted
