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
        for user_id in joined:
            self._table.upsert(group_id, user_id, {})
        for user_id in left:
            self._table.delete(group_id, user_id)

    def replace(self, group_id: str, current: set[str]) -> tuple[set[str], set[str]]:
        """Make the stored set equal `current`; return (joined, left)."""
        stored = self.members(group_id)
        joined, left = current - stored, stored - current
        self.apply(group_id, joined, left)
        return joined, left
