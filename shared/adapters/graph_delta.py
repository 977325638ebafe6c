"""How one `/groups/delta` round's pages become the port's `GroupDelta` per group.

A big group spans several pages; its `members@delta` entries (users and nested groups, added
or `@removed`) and changed properties are merged across them before the round is returned;
the properties the service reads (assignedLicenses, displayName) are translated to typed values.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.ports.directory import (
    DELTA_FILTER_LIMIT,
    JSON,
    DirectoryError,
    GroupDelta,
    licenses_from_graph,
)

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"


DELTA_PAGES_PER_GROUP = 2000
"""Pages one round may take per group of its partition (plus one group's worth): far more than
any real group's members fill (Graph's delta pages are server-sized, often hundreds of entries
each), so only a server that never ends its round reaches it."""


class DeltaPages:
    """The nextLinks one delta round followed: a link seen before (the server sends the round
    in a circle) or more pages than the partition can fill raise a `DirectoryError` (502, so
    the message is retried later) instead of following the server until the function times
    out."""

    def __init__(self, group_ids: Sequence[str], per_group: int = DELTA_PAGES_PER_GROUP) -> None:
        groups = len(set(group_ids)) or DELTA_FILTER_LIMIT  # a link's own ids are not known
        self.limit = per_group * (groups + 1)
        self._seen: set[str] = set()

    def follow(self, next_link: str) -> str:
        """`next_link`, once checked: raises when it was followed before or the round is over
        its page limit."""
        if next_link in self._seen:
            raise DirectoryError(
                502,
                "DeltaNextLinkRepeated",
                f"delta round sent a nextLink it had sent before, after {len(self._seen)} pages",
            )
        if len(self._seen) + 1 >= self.limit:
            raise DirectoryError(
                502,
                "DeltaTooManyPages",
                f"delta round did not end within {self.limit} pages",
            )
        self._seen.add(next_link)
        return next_link


class DeltaMerge:
    """One group's entries merged across delta pages (a big group spans several pages)."""

    __slots__ = ("added", "deleted", "nested_added", "nested_removed", "properties", "removed")

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.nested_added: set[str] = set()
        self.nested_removed: set[str] = set()
        self.properties: JSON = {}
        self.deleted = False

    def merge(self, obj: JSON) -> None:
        if "@removed" in obj:
            self.deleted = True
            return
        for member in obj.get("members@delta") or []:
            kind = member.get("@odata.type")
            if kind == USER_TYPE:
                added, removed = self.added, self.removed
            elif kind == GROUP_TYPE:
                added, removed = self.nested_added, self.nested_removed
            else:
                continue
            mid = str(member.get("id"))
            if "@removed" in member:
                removed.add(mid)
                added.discard(mid)
            else:
                added.add(mid)
                removed.discard(mid)
        for key, value in obj.items():
            if key not in {"id", "members@delta"} and not key.startswith("@"):
                self.properties[key] = value

    def result(self, gid: str) -> GroupDelta:
        if self.deleted:
            return GroupDelta(group_id=gid, deleted=True)
        licenses = self.properties.get("assignedLicenses")
        name = self.properties.get("displayName")
        return GroupDelta(
            group_id=gid,
            added=frozenset(self.added),
            removed=frozenset(self.removed),
            nested_added=frozenset(self.nested_added),
            nested_removed=frozenset(self.nested_removed),
            licenses=None if licenses is None else licenses_from_graph(licenses),
            display_name=str(name) if name else None,
        )
