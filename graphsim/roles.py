"""Application permissions (app roles) graphsim enforces, when the token says which it has.

A JWT with a `roles` claim (tokens from `/_sim/token` or signed with `--token`) is held to
Microsoft's per-API tables for the calls License Guard makes: a call no role of the token
allows is answered 403 `Authorization_RequestDenied`, as Graph does. Tokens without a `roles`
claim (static tokens) are not restricted. Sources: the "Permissions" section of each API page,
e.g. https://learn.microsoft.com/graph/api/user-list (User.Read.All ...),
https://learn.microsoft.com/graph/api/group-list, .../subscribedsku-list,
.../directoryaudit-list, .../user-reprocesslicenseassignment, .../user-sendmail,
.../user-post-messages and .../message-delete (Mail.ReadWrite), .../message-send (Mail.Send),
.../mailfolder-list-messages (Mail.ReadBasic.All, Mail.Read, Mail.ReadWrite),
.../serviceprincipal-list-approleassignments (Application.Read.All, Directory.Read.All).
"""

from __future__ import annotations

import re

_DIRECTORY = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
GROUP_READ = _DIRECTORY | {
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
}
USER_READ = _DIRECTORY | {"User.Read.All", "User.ReadWrite.All"}
ORG_READ = _DIRECTORY | {"Organization.Read.All", "Organization.ReadWrite.All"}
USER_WRITE = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
MAIL_READ = frozenset({"Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
SUBSCRIBE_GROUPS = frozenset({"Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All"})
APPLICATION_READ = _DIRECTORY | {"Application.Read.All", "Application.ReadWrite.All"}

RULES: tuple[tuple[frozenset[str], re.Pattern[str], frozenset[str]], ...] = tuple(
    (frozenset(methods.split()), re.compile(pattern, re.IGNORECASE), allowed)
    for methods, pattern, allowed in (
        ("GET", r"^/users/[^/]+/(messages|mailFolders)(/|$)", MAIL_READ),
        ("POST", r"^/users/[^/]+/messages/[^/]+/send$", frozenset({"Mail.Send"})),
        ("POST", r"^/users/[^/]+/messages$", frozenset({"Mail.ReadWrite"})),
        ("DELETE", r"^/users/[^/]+/messages/[^/]+$", frozenset({"Mail.ReadWrite"})),
        ("GET", r"^/groups(/|$)", GROUP_READ),
        ("GET", r"^/users(/|$)", USER_READ),
        ("GET", r"^/(subscribedSkus|organization)(/|$)", ORG_READ),
        ("GET", r"^/auditLogs/", frozenset({"AuditLog.Read.All"})),
        ("GET", r"^/servicePrincipals/", APPLICATION_READ),
        ("POST", r"^/users/[^/]+/(reprocessLicenseAssignment|assignLicense)$", USER_WRITE),
        ("POST", r"^/users/[^/]+/sendMail$", frozenset({"Mail.Send"})),
        ("POST PATCH DELETE", r"^/subscriptions(/|$)", SUBSCRIBE_GROUPS),
    )
)


def denied(method: str, path: str, roles: frozenset[str] | None) -> bool:
    """True when `roles` (None: not restricted) allow none of the roles the call needs."""
    if roles is None:
        return False
    for methods, pattern, allowed in RULES:
        if method in methods and pattern.search(path):
            return not roles & allowed
    return False
