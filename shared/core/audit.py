"""Who made a directory change, read from an Entra audit entry (`directoryAudit`).

Entra Connect writes as its sync service account (a user, `Sync_<server>_<id>@...`), and its
entries carry the target modifiedProperty "Action Client Name" = "DirectorySync" (the sample in
https://learn.microsoft.com/en-us/graph/api/directoryaudit-list). Such a change is attributed to
"Entra Connect sync" (with the account), not to a person; otherwise the initiating user's UPN,
or the app's display name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DIRECTORY_SYNC = "DirectorySync"
ACTION_CLIENT = "Action Client Name"


def is_directory_sync(entry: Mapping[str, Any]) -> bool:
    for target in entry.get("targetResources") or ():
        for prop in target.get("modifiedProperties") or ():
            if prop.get("displayName") == ACTION_CLIENT and DIRECTORY_SYNC in str(
                prop.get("newValue") or ""
            ):
                return True
    return False


def audit_actor(entry: Mapping[str, Any]) -> str | None:
    """The actor of an audit entry, or None when it names nobody."""
    initiated = entry.get("initiatedBy") or {}
    user = initiated.get("user") or {}
    app = initiated.get("app") or {}
    who = user.get("userPrincipalName") or user.get("displayName") or app.get("displayName")
    if is_directory_sync(entry):
        return f"Entra Connect sync ({who})" if who else "Entra Connect sync"
    return str(who) if who else None
