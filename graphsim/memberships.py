"""Who licenses whom: a group's direct user members, the user -> groups index, and which
groups carry licenses Entra would apply (graph-facts §4.1).

Only first-level *user* members count; nested groups grant nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"


def member_user_ids(group: Mapping[str, Any]) -> list[str]:
    """Ids of the group's direct *user* members; nested groups grant nothing (§4.1).

    A member without ``@odata.type`` is taken to be a user (older snapshots omit it).
    """
    return [
        m["id"]
        for m in group.get("members") or []
        if m.get("@odata.type", USER_TYPE) == USER_TYPE and "id" in m
    ]


def index_memberships(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """User id -> ids of groups it is a direct member of; build once, reuse across calls."""
    index: dict[str, set[str]] = {}
    for gid, group in groups.items():
        for uid in member_user_ids(group):
            index.setdefault(uid, set()).add(gid)
    return index


def is_licensed_group(group: Mapping[str, Any] | None) -> bool:
    """True when the group carries licenses that Entra would apply (§4.1: security-enabled)."""
    return bool(
        group is not None
        and group.get("assignedLicenses")
        and group.get("securityEnabled", True) is not False
    )


def licensed_group_ids_for_user(user_id: str, groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Sorted ids of licensed groups that have ``user_id`` as a direct user member."""
    return sorted(
        gid
        for gid, group in groups.items()
        if is_licensed_group(group) and user_id in member_user_ids(group)
    )
