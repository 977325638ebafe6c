"""`GroupMembers`: the member sets of licensed groups (table `groupmembers`).

Kept so that a full resync (an expired delta token) can still tell who left: PartitionKey is
the group (or `nested:<group id>` for its nested groups), RowKey the member.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.ports.tables import EntityStore


class GroupMembers:
    """Member sets of licensed groups (table `groupmembers`: PartitionKey group, RowKey user)."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def members(self, group_id: str) -> set[str]:
        return {e.row_key for e in self._table.query(group_id)}

    def apply(self, group_id: str, joined: Iterable[str], left: Iterable[str]) -> None:
        """One partition: written in transactions of 100 rows (a first sweep of 300k
        memberships one row a call outlasted the function timeout). Safe to repeat: a replay
        after a crash between two transactions upserts and deletes the same rows again. A
        member in both ends deleted, as when rows were written one by one."""
        gone = set(left)
        self._table.write_batch(group_id, {u: {} for u in joined if u not in gone}, gone)

    def replace(self, group_id: str, current: set[str]) -> tuple[set[str], set[str]]:
        """Make the stored set equal `current`; return (joined, left)."""
        stored = self.members(group_id)
        joined, left = current - stored, stored - current
        self.apply(group_id, joined, left)
        return joined, left
