"""The directory audit log graphsim keeps: entries shaped like Graph's `directoryAudit`
(`GET /auditLogs/directoryAudits`), with the initiators real tenants show.

Shapes follow directoryaudit-list's sample: Entra Connect writes as its sync account (a user)
and marks its targets "Action Client Name" = "DirectorySync"; group-based licensing writes as
the app "Microsoft Entra group-Based Licensing".
"""

from __future__ import annotations

import uuid
from typing import Any

from .clock import SimClock, iso

Obj = dict[str, Any]
GBL_ACTOR = "Microsoft Entra group-Based Licensing"
SYNC_ACCOUNT = "Sync_GRAPHSIM_0f1e2d3c4b5a@graphsim.onmicrosoft.com"
SYNC_CLIENT = {"displayName": "Action Client Name", "oldValue": None, "newValue": "DirectorySync"}


def actor(who: str) -> Obj:
    """initiatedBy for the audit log: 'admin', 'sync', 'gbl' or 'app:<appId>'."""
    if who.startswith("app:"):
        app_id = who[4:]
        return {
            "user": None,
            "app": {
                "appId": app_id,
                "displayName": "graphsim client app",
                "servicePrincipalId": app_id,
                "servicePrincipalName": None,
            },
        }
    if who == "sync":
        # Entra Connect writes as its sync service account (a user); the entry's targets
        # say "Action Client Name" = "DirectorySync" (directoryaudit-list's sample).
        return {
            "app": None,
            "user": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "graphsim.sync")),
                "displayName": None,
                "userPrincipalName": SYNC_ACCOUNT,
                "ipAddress": None,
            },
        }
    if who == "gbl":
        return {
            "user": None,
            "app": {
                "appId": None,
                "displayName": GBL_ACTOR,
                "servicePrincipalId": None,
                "servicePrincipalName": None,
            },
        }
    return {
        "app": None,
        "user": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "graphsim.admin")),
            "displayName": "Simulated Admin",
            "userPrincipalName": "admin@graphsim.onmicrosoft.com",
            "ipAddress": "127.0.0.1",
        },
    }


def audit_target(obj: Obj, kind: str, modified: list[Obj] | None = None) -> Obj:
    """A `targetResource`: the object, its kind and the properties the change modified."""
    group_type = None
    if kind == "Group":
        group_type = "unifiedGroups" if "Unified" in (obj.get("groupTypes") or ()) else "azureAD"
    return {
        "id": obj["id"],
        "displayName": obj.get("displayName"),
        "type": kind,
        "userPrincipalName": obj.get("userPrincipalName"),
        "groupType": group_type,
        "modifiedProperties": modified or [],
    }


class AuditLog(list[Obj]):
    """The tenant's audit entries, oldest first; `record` appends one stamped by the clock."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.clock = clock

    def record(
        self,
        activity: str,
        category: str,
        who: str,
        targets: list[Obj],
        *,
        result: str = "success",
        reason: str = "",
        details: list[Obj] | None = None,
    ) -> None:
        """Append one directoryAudit entry initiated by `who` (see :func:`actor`)."""
        if who == "sync":
            targets = [
                t | {"modifiedProperties": [*t["modifiedProperties"], SYNC_CLIENT]} for t in targets
            ]
        self.append(
            {
                "id": f"Directory_{uuid.uuid4()}",
                "category": category,
                "correlationId": str(uuid.uuid4()),
                "result": result,
                "resultReason": reason,
                "activityDisplayName": activity,
                "activityDateTime": iso(self.clock.now()),
                "loggedByService": "Core Directory",
                "operationType": "Update" if "license" in activity.lower() else "Assign",
                "initiatedBy": actor(who),
                "targetResources": targets,
                "additionalDetails": details or [],
            }
        )
