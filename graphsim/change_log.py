"""The group change log delta queries replay: one entry per change, in order.

An entry is ``(group id, kind, detail, member type)``; ``detail`` is the member id for
ADDED/REMOVED, the property name for PROPS and the `@removed` reason for DELETED. Nothing is
snapshotted per delta token: a token is a position in this log.
"""

from __future__ import annotations

# group properties changed, member added, member removed, group deleted, group restored from
# the deleted items
PROPS, ADDED, REMOVED, DELETED, RESTORED = "p", "a", "r", "d", "s"

ChangeEntry = tuple[str, str, str | None, str | None]
