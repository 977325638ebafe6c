"""Which Microsoft Graph application permissions (app roles) the service needs, per call.

Data only (no I/O). Every Graph request the adapters make is listed as (method, path template)
with its least-privileged application permission from graph-facts §7 (Microsoft's per-API
permission tables) and the permission set it belongs to:

- `read`: the default, read-only grant (group/user reads, delta, subscriptions on /groups,
  tenant SKUs/organization, the directory audit log);
- `reprocess`: `User.ReadWrite.All`, only for `reprocessLicenseAssignment`;
- `alerts`: alert mail is a draft in the sender's mailbox, then sent: `Mail.ReadWrite` (create
  the draft, find it again after a lost answer, delete one a newer alert replaced) and
  `Mail.Send` (send it). As Entra app roles both are tenant-wide: either grant them in
  Exchange RBAC for Applications instead, scoped to the sender mailbox (then no Entra role:
  the grants add up), or grant the app roles and restrict them with an application access
  policy (docs/operations.md, "Enable alert mail").

`APP_ROLE_IDS` holds the app role ids of the Microsoft Graph service principal (appId
00000003-0000-0000-c000-000000000000) to grant them by id (Bicep appRoleAssignedTo,
New-MgServicePrincipalAppRoleAssignment); a test checks them against
`shared/data/graph-app-roles.csv`. Group.Read.All includes everything GroupMember.Read.All
allows, so `grant()` drops GroupMember.Read.All when Group.Read.All is granted anyway (it is
needed for subscriptions on /groups).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

READ = "read"
REPROCESS = "reprocess"
ALERTS = "alerts"
BATCH = "batch"
"""$batch needs no permission of its own: each item is authorised as if sent alone."""

APP_ROLE_IDS: dict[str, str] = {
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
    "Mail.ReadWrite": "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
    "Mail.ReadBasic.All": "693c5e45-0940-467d-9b8a-1022fb9d42ef",
}

IMPLIED_BY: dict[str, str] = {
    "GroupMember.Read.All": "Group.Read.All",
    "Mail.ReadBasic.All": "Mail.ReadWrite",
}
"""Permission -> a broader one that covers it (drop the narrower one when both are granted)."""


@dataclass(frozen=True, slots=True)
class GraphCall:
    method: str
    path: str
    """Path template under /v1.0, ids as `{id}`."""
    permission: str | None
    """Least-privileged application permission; None for $batch (checked per item)."""
    permission_set: str
    purpose: str
    confirmed: bool = True
    """False where graph-facts marks the permission [UNCONFIRMED] or inferred."""
    used: bool = True
    """False for calls listed ahead of use (none at the moment)."""


CALLS: tuple[GraphCall, ...] = (
    # groups (group-list, group-get, group-list-members, group-delta)
    GraphCall("GET", "/groups", "GroupMember.Read.All", READ, "licensed groups; groups in error"),
    GraphCall("GET", "/groups/{id}", "GroupMember.Read.All", READ, "groups by id ($batch item)"),
    GraphCall("GET", "/groups/{id}/members", "GroupMember.Read.All", READ, "direct members"),
    GraphCall("GET", "/groups/delta", "GroupMember.Read.All", READ, "membership delta rounds"),
    GraphCall(
        "GET",
        "/groups/{id}/membersWithLicenseErrors",
        "GroupMember.Read.All",
        READ,
        "members in license error",
        confirmed=False,  # graph-facts §3.3/§7: not published; Directory.Read.All also works
    ),
    # users (user-list, user-get, user-list-memberof)
    GraphCall("GET", "/users", "User.Read.All", READ, "all users, page by page (nightly scan)"),
    # user-list "Get only a count of users": same permissions as the list; before /users/{id},
    # whose pattern would also match it
    GraphCall("GET", "/users/$count", "User.Read.All", READ, "user total for scan progress"),
    GraphCall("GET", "/users/{id}", "User.Read.All", READ, "users by id ($batch item)"),
    GraphCall(
        "GET",
        "/users/{id}/memberOf",
        "User.Read.All",
        READ,
        "direct group memberships ($batch item)",
        # older doc revisions list Directory.Read.All; with User.Read.All (+ GroupMember.Read.All,
        # granted anyway) group entries come back at least with id and @odata.type, all we read
        confirmed=False,
    ),
    GraphCall("POST", "/$batch", None, BATCH, "JSON batching of the item calls"),
    # tenant (subscribedsku-list, organization-get, directoryaudit-list)
    GraphCall("GET", "/subscribedSkus", "Organization.Read.All", READ, "SKUs and seats"),
    GraphCall("GET", "/organization", "Organization.Read.All", READ, "tenant and sync status"),
    GraphCall(
        "GET",
        "/auditLogs/directoryAudits",
        "AuditLog.Read.All",
        READ,
        "licensing audit entries",
    ),
    # change notifications on /groups (subscription-post-subscriptions and siblings)
    GraphCall("GET", "/subscriptions", "Group.Read.All", READ, "list our subscriptions"),
    GraphCall("POST", "/subscriptions", "Group.Read.All", READ, "subscribe to /groups"),
    GraphCall("GET", "/subscriptions/{id}", "Group.Read.All", READ, "dead-man switch check"),
    GraphCall("PATCH", "/subscriptions/{id}", "Group.Read.All", READ, "renew"),
    GraphCall("DELETE", "/subscriptions/{id}", "Group.Read.All", READ, "unsubscribe"),
    GraphCall("POST", "/subscriptions/{id}/reauthorize", "Group.Read.All", READ, "reauthorize"),
    # writes
    GraphCall(
        "POST",
        "/users/{id}/reprocessLicenseAssignment",
        "User.ReadWrite.All",
        REPROCESS,
        "re-run group-based licensing for a user",
    ),
    GraphCall("POST", "/users/{id}/sendMail", "Mail.Send", ALERTS, "one-step mail (tools)"),
    # alert mail: draft, then send (user-post-messages, mailfolder-list-messages, message-send,
    # message-delete)
    GraphCall(
        "GET",
        "/users/{id}/mailFolders/drafts/messages",
        "Mail.ReadBasic.All",
        ALERTS,
        "find an alert's draft by internetMessageId after a lost answer",
    ),
    GraphCall("POST", "/users/{id}/messages", "Mail.ReadWrite", ALERTS, "alert mail draft"),
    GraphCall("POST", "/users/{id}/messages/{id}/send", "Mail.Send", ALERTS, "send the draft"),
    GraphCall(
        "DELETE",
        "/users/{id}/messages/{id}",
        "Mail.ReadWrite",
        ALERTS,
        "delete a draft left by an alert a newer one replaced (message-delete)",
    ),
)

PERMISSION_SETS: dict[str, frozenset[str]] = {
    name: frozenset(c.permission for c in CALLS if c.permission_set == name and c.permission)
    for name in (READ, REPROCESS, ALERTS)
}

DIRECTORY_WIDE = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})


def has_role(roles: Iterable[str], permission: str) -> bool:
    """Granted as such or through a wider role: a read by its ReadWrite twin or the directory
    roles, a write only by Directory.ReadWrite.All (Directory.Read.All writes nothing)."""
    wider = {permission, permission.replace(".Read.", ".ReadWrite.")}
    if permission.startswith(("Group", "User", "Organization")):
        wider |= {"Directory.ReadWrite.All"} if ".ReadWrite." in permission else DIRECTORY_WIDE
    return bool(wider & set(roles))


def holds_set(roles: Iterable[str], permission_set: str) -> bool:
    """Whether app roles `roles` allow every call of the permission set."""
    held = frozenset(roles)
    return all(has_role(held, p) for p in PERMISSION_SETS[permission_set])


def _pattern(template: str) -> re.Pattern[str]:
    parts = [re.escape(p) if p != "{id}" else r"[^/]+" for p in template.strip("/").split("/")]
    return re.compile("/" + "/".join(parts) + "/?", re.IGNORECASE)


_PATTERNS = tuple((c, _pattern(c.path)) for c in CALLS)


def find_call(method: str, path: str) -> GraphCall | None:
    """The manifest entry for a request (`path` concrete or templated, without /v1.0)."""
    path = path.split("?", 1)[0]
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    for call, pattern in _PATTERNS:
        if call.method == method.upper() and (call.path == path or pattern.fullmatch(path)):
            return call
    return None


def grant(sets: Iterable[str] = (READ,)) -> list[str]:
    """The app roles to grant for these permission sets, narrower implied ones dropped."""
    wanted: set[str] = set()
    for name in sets:
        wanted |= PERMISSION_SETS[name]
    return sorted(p for p in wanted if IMPLIED_BY.get(p) not in wanted)
