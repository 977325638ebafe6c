"""`FakeDirectory`: the `Directory` port in memory, for fast service-layer tests.

Built from a tenant snapshot (the README's format: `subscribedSkus`, `groups` with `members`,
`users`, optional `organization`). It follows the same contract test suite as
`GraphDirectory`, so it behaves like Graph where the port says anything: delta rounds (an
initial round lists every member, later rounds only what changed since the token, an unknown
or expired token raises `DeltaTokenExpired`), unknown ids are absent, reprocess of a missing
user is False, subscriptions expire within Graph's 41,760-minute limit.

Test hands: `add_member`, `remove_member`, `set_group_licenses`, `set_user_state`,
`delete_group`, `expire_delta_tokens`, `reset_delta_sync`, `fail_next_send_mail`,
`lose_next_answer`; observations: `reprocessed` (user ids, in order), `drafts`, `sent_mail` (one
dict per accepted sendMail or sent draft: `sender`, `message`, `saveToSentItems`; a sent draft
adds `mime` and `draftId`) and `requests` (calls per port method; `request_count` is the total).

Paging: `users_page` (users in id order) and `group_members_page` serve `page_size` objects per
page with opaque `fake://` next links. Audit log: `audits` is a plain list of Graph
`directoryAudit` dicts (assign it to set entries); the membership/license/delete mutators and
`reprocess_license_assignment` append entries shaped like Graph's ("Add member to group",
"Remove member from group", "Set group license", "Delete group", "Change user license") stamped
with `now()`, initiated by `actor` (a UPN: `initiatedBy.user`; anything else:
`initiatedBy.app.displayName`), by default `admin_upn`.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from shared.ports.directory import (
    DELTA_FILTER_LIMIT,
    GROUP_SELECT,
    JSON,
    USER_SELECT,
    DeltaRound,
    DeltaTokenExpired,
    Directory,
    DirectoryError,
    GroupDelta,
    Subscription,
)

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
DELTA_PROPERTIES = ("assignedLicenses", "displayName")
SUBSCRIPTION_MAX_MINUTES = 41_760
_NO_ERROR = (None, "", "None")
_USER_FIELDS = tuple(USER_SELECT.split(","))
_GROUP_FIELDS = tuple(GROUP_SELECT.split(","))

# change-log kinds
_ADDED, _REMOVED, _PROPS, _DELETED = "added", "removed", "props", "deleted"


def _project(obj: Mapping[str, Any], fields: Sequence[str]) -> JSON:
    """Graph's $select: every selected field, null when the object has none."""
    return {f: copy.deepcopy(obj.get(f)) for f in fields}


def _parse_iso(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _target(obj: Mapping[str, Any], kind: str, modified: list[JSON] | None = None) -> JSON:
    return {
        "id": obj.get("id"),
        "displayName": obj.get("displayName"),
        "type": kind,
        "userPrincipalName": obj.get("userPrincipalName"),
        "groupType": None,
        "modifiedProperties": modified or [],
    }


def _initiated_by(actor: str) -> JSON:
    """Graph's auditActivityInitiator: a user for a UPN, else an app with this displayName."""
    if "@" in actor:
        return {
            "app": None,
            "user": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, actor.lower())),
                "displayName": actor.split("@", 1)[0],
                "userPrincipalName": actor,
                "ipAddress": None,
            },
        }
    return {
        "user": None,
        "app": {
            "appId": None,
            "displayName": actor,
            "servicePrincipalId": None,
            "servicePrincipalName": None,
        },
    }


def _mail_error(code: str, message: str) -> DirectoryError:
    return DirectoryError(400, code, message)


def _check_message(message: Any) -> None:
    """The checks Exchange (and graphsim) make before accepting a sendMail message."""
    if not isinstance(message, Mapping):
        raise _mail_error("ErrorInvalidRequest", "The message parameter is required.")
    found = 0
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        for rec in message.get(key) or []:
            address = ((rec or {}).get("emailAddress") or {}).get("address")
            if not address or "@" not in str(address):
                raise _mail_error("ErrorInvalidRecipients", f"Invalid recipient in '{key}'.")
            found += 1
    if not found:
        raise _mail_error(
            "ErrorInvalidRecipients", "At least one recipient is required, but none were found."
        )
    kind = str((message.get("body") or {}).get("contentType", "Text"))
    if kind.lower() not in ("text", "html"):
        raise _mail_error("ErrorInvalidRequest", f"Invalid body contentType '{kind}'.")
    for header in message.get("internetMessageHeaders") or []:
        name = str((header or {}).get("name", ""))
        if not name.lower().startswith("x-"):
            raise _mail_error(
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )


def _message_from_mime(mime: bytes) -> JSON:
    """Graph's view of a MIME draft: subject, HTML body, recipients, `x-` headers."""
    parsed = message_from_bytes(mime, policy=policy.default)
    if not isinstance(parsed, EmailMessage) or not parsed.keys():
        raise _mail_error("ErrorMimeContentInvalidBase64String", "Invalid MIME content.")
    part = parsed.get_body(preferencelist=("html", "plain"))
    html = part is not None and part.get_content_subtype() == "html"
    return {
        "subject": parsed.get("Subject"),
        "body": {
            "contentType": "HTML" if html else "Text",
            "content": part.get_content() if part is not None else "",
        },
        "toRecipients": [
            {"emailAddress": {"address": a}} for _, a in getaddresses(parsed.get_all("To") or [])
        ],
        "internetMessageHeaders": [
            {"name": k, "value": str(v)} for k, v in parsed.items() if k.lower().startswith("x-")
        ],
        "internetMessageId": parsed.get("Message-ID"),
    }


_FAIL_CODES = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


def _in_error(state: Mapping[str, Any]) -> bool:
    return state.get("state") == "Error" or state.get("error") not in _NO_ERROR


class FakeDirectory:
    """In-memory Graph for one tenant snapshot. `now` drives subscription expiry checks and
    audit timestamps; `page_size` is the page length of `users_page`/`group_members_page`."""

    def __init__(
        self,
        snapshot: Mapping[str, Any],
        *,
        now: Callable[[], datetime] | None = None,
        page_size: int = 999,
        admin_upn: str = "admin@contoso.com",
        app_display_name: str = "Entra License Guard",
    ) -> None:
        data = copy.deepcopy(dict(snapshot))
        self._now = now or (lambda: datetime.now(UTC))
        self.page_size = max(1, page_size)
        self.admin_upn = admin_upn
        """Default `actor` of the mutators' audit entries (an admin in the portal)."""
        self.app_display_name = app_display_name
        """The app that this directory's own writes (reprocess) are audited as."""
        self.users: dict[str, JSON] = {u["id"]: u for u in data.get("users") or []}
        self.groups: dict[str, JSON] = {}
        self.members: dict[str, list[JSON]] = {}
        for group in data.get("groups") or []:
            members = group.pop("members", None) or []
            group.setdefault("assignedLicenses", [])
            self.groups[group["id"]] = group
            self.members[group["id"]] = [
                {"@odata.type": m.get("@odata.type", USER_TYPE), "id": m["id"]} for m in members
            ]
        self.skus: list[JSON] = list(data.get("subscribedSkus") or [])
        self.orgs: list[JSON] = list(data.get("organization") or [])
        self.reprocessed: list[str] = []
        self.sent_mail: list[JSON] = []
        self.audits: list[JSON] = list(data.get("directoryAudits") or [])
        self._send_failures: list[tuple[int, float | None]] = []
        self._lost_answers: list[str] = []
        self.drafts: dict[str, JSON] = {}
        self.requests: Counter[str] = Counter()
        self._subs: dict[str, Subscription] = {}
        self._log: list[tuple[str, str, str | None]] = []  # (group id, kind, member id)
        self._tokens: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._expired: set[str] = set()
        self._reset: set[str] = set()
        self._token_ids = itertools.count(1)

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    # ------------------------------------------------------------------ test hands
    def record_audit(
        self,
        activity: str,
        targets: list[JSON],
        *,
        actor: str | None = None,
        category: str = "GroupManagement",
    ) -> JSON:
        """Append one directoryAudit entry (Graph's shape), stamped with `now()`."""
        entry: JSON = {
            "id": f"Directory_{uuid.uuid4()}",
            "category": category,
            "correlationId": str(uuid.uuid4()),
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": _iso(self._now()),
            "loggedByService": "Core Directory",
            "operationType": "Update" if "license" in activity.lower() else "Assign",
            "initiatedBy": _initiated_by(actor or self.admin_upn),
            "targetResources": targets,
            "additionalDetails": [],
        }
        self.audits.append(entry)
        return entry

    def _member_target(self, member_id: str, mtype: str) -> JSON:
        if mtype == USER_TYPE:
            return _target(self.users.get(member_id) or {"id": member_id}, "User")
        return _target(self.groups.get(member_id) or {"id": member_id}, "Group")

    def add_member(self, group_id: str, user_id: str, *, actor: str | None = None) -> None:
        members = self.members[group_id]
        if any(m["id"] == user_id for m in members):
            raise ValueError(f"{user_id} is already a member of {group_id}")
        mtype = USER_TYPE if user_id in self.users else "#microsoft.graph.group"
        members.append({"@odata.type": mtype, "id": user_id})
        self._log.append((group_id, _ADDED, user_id))
        self.record_audit(
            "Add member to group",
            [self._member_target(user_id, mtype), _target(self.groups[group_id], "Group")],
            actor=actor,
        )

    def remove_member(self, group_id: str, user_id: str, *, actor: str | None = None) -> None:
        members = self.members[group_id]
        kept = [m for m in members if m["id"] != user_id]
        if len(kept) == len(members):
            raise ValueError(f"{user_id} is not a member of {group_id}")
        mtype = next(m["@odata.type"] for m in members if m["id"] == user_id)
        self.members[group_id] = kept
        self._log.append((group_id, _REMOVED, user_id))
        self.record_audit(
            "Remove member from group",
            [self._member_target(user_id, mtype), _target(self.groups[group_id], "Group")],
            actor=actor,
        )

    def set_group_licenses(
        self, group_id: str, assigned: list[JSON], *, actor: str | None = None
    ) -> None:
        """Replace the group's assignedLicenses ([{skuId, disabledPlans}])."""
        group = self.groups[group_id]
        group["assignedLicenses"] = copy.deepcopy(assigned)
        self._log.append((group_id, _PROPS, None))
        modified = [
            {
                "displayName": "AssignedLicense",
                "oldValue": None,
                "newValue": json.dumps(group["assignedLicenses"], separators=(",", ":")),
            }
        ]
        self.record_audit("Set group license", [_target(group, "Group", modified)], actor=actor)

    def fail_next_send_mail(self, status: int, retry_after: float | None = None) -> None:
        """The next `send_mail` raises DirectoryError(status, ..., retry_after) and sends
        nothing. Calls queue up: call twice to fail the next two."""
        self._send_failures.append((status, retry_after))

    def lose_next_answer(self, method: str) -> None:
        """The next call of `method` (`create_draft`, `send_draft`) is carried out, then raises
        a transient DirectoryError, as when Graph's answer is lost. Calls queue up."""
        self._lost_answers.append(method)

    def _answer_lost(self, method: str) -> None:
        if method in self._lost_answers:
            self._lost_answers.remove(method)
            raise DirectoryError(503, "TransportError", "Simulated lost answer.")

    def set_user_state(self, user_id: str, **fields: Any) -> None:
        """Overwrite user fields, e.g. licenseAssignmentStates=[...], usageLocation="DE"."""
        self.users[user_id].update(copy.deepcopy(fields))

    def delete_group(self, group_id: str, *, actor: str | None = None) -> None:
        group = self.groups.pop(group_id)
        del self.members[group_id]
        self._log.append((group_id, _DELETED, None))
        self.record_audit("Delete group", [_target(group, "Group")], actor=actor)

    def expire_delta_tokens(self) -> None:
        """Every delta link handed out so far is expired (as after 7 days): 400
        syncStateNotFound, as Graph answers."""
        self._expired.update(self._tokens)
        self._tokens.clear()

    def reset_delta_sync(self) -> None:
        """A synchronization reset: every delta link handed out so far answers 410 Gone."""
        self._reset.update(self._tokens)
        self._tokens.clear()

    # ------------------------------------------------------------------ reads
    def _count(self, name: str) -> None:
        self.requests[name] += 1

    def _user_member_ids(self, group_id: str) -> list[str]:
        return [
            m["id"]
            for m in self.members.get(group_id, [])
            if m["@odata.type"] == USER_TYPE and m["id"] in self.users
        ]

    async def licensed_groups(self) -> list[JSON]:
        self._count("licensed_groups")
        return [_project(g, _GROUP_FIELDS) for g in self.groups.values() if g["assignedLicenses"]]

    async def groups_by_id(self, group_ids: Sequence[str]) -> dict[str, JSON]:
        self._count("groups_by_id")
        return {
            gid: _project(self.groups[gid], _GROUP_FIELDS)
            for gid in group_ids
            if gid in self.groups
        }

    async def group_member_ids(self, group_id: str) -> list[str]:
        self._count("group_member_ids")
        if group_id not in self.groups:
            raise DirectoryError(404, "Request_ResourceNotFound", f"Resource '{group_id}'")
        return [m["id"] for m in self.members[group_id] if m["@odata.type"] == USER_TYPE]

    async def group_delta(self, group_ids: Sequence[str], delta_link: str | None) -> DeltaRound:
        self._count("group_delta")
        if delta_link is None:
            ids = tuple(dict.fromkeys(group_ids))
            if not ids or len(ids) > DELTA_FILTER_LIMIT:
                raise ValueError(f"group_delta takes 1 to {DELTA_FILTER_LIMIT} group ids")
            groups = {
                gid: GroupDelta(
                    group_id=gid,
                    added=frozenset(self.group_member_ids_now(gid)),
                    nested_added=frozenset(
                        m["id"] for m in self.members[gid] if m["@odata.type"] == GROUP_TYPE
                    ),
                    properties=_project(self.groups[gid], DELTA_PROPERTIES),
                )
                for gid in ids
                if gid in self.groups
            }
            return DeltaRound(groups, self._issue(ids), initial=True)
        token = self._tokens.get(delta_link)
        if token is None and delta_link in self._reset:
            raise DeltaTokenExpired(
                410, "resyncRequired", "The sync state was reset. Synchronize again."
            )
        if token is None and delta_link in self._expired:
            raise DeltaTokenExpired(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data "
                "must be synchronized again.",
            )
        if token is None:
            raise DeltaTokenExpired(400, "resyncRequired", "The delta token is not valid.")
        start, ids = token
        return DeltaRound(self._changes(start, set(ids)), self._issue(ids), initial=False)

    def group_member_ids_now(self, group_id: str) -> list[str]:
        return [m["id"] for m in self.members[group_id] if m["@odata.type"] == USER_TYPE]

    def _issue(self, ids: tuple[str, ...]) -> str:
        link = f"fake://graph/v1.0/groups/delta?$deltatoken={next(self._token_ids)}"
        self._tokens[link] = (len(self._log), ids)
        return link

    def _changes(self, start: int, wanted: set[str]) -> dict[str, GroupDelta]:
        touched: dict[str, dict[str, bool]] = {}
        deleted: set[str] = set()
        for gid, kind, mid in self._log[start:]:
            if gid not in wanted:
                continue
            members = touched.setdefault(gid, {})
            if kind == _DELETED:
                deleted.add(gid)
            elif mid is not None:
                members[mid] = kind == _ADDED
        out: dict[str, GroupDelta] = {}
        for gid, members in touched.items():
            if gid in deleted and gid not in self.groups:
                out[gid] = GroupDelta(group_id=gid, deleted=True)
                continue
            if gid not in self.groups:
                continue
            # a group whose only change is a non-user member still comes back (no members)
            user_changes = {m: a for m, a in members.items() if m in self.users}
            group_changes = {m: a for m, a in members.items() if m in self.groups}
            out[gid] = GroupDelta(
                group_id=gid,
                added=frozenset(m for m, a in user_changes.items() if a),
                removed=frozenset(m for m, a in user_changes.items() if not a),
                nested_added=frozenset(m for m, a in group_changes.items() if a),
                nested_removed=frozenset(m for m, a in group_changes.items() if not a),
                properties=_project(self.groups[gid], DELTA_PROPERTIES),
            )
        return out

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        self._count("users_by_id")
        return {
            uid: _project(self.users[uid], _USER_FIELDS) for uid in user_ids if uid in self.users
        }

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        self._count("member_of")
        return {
            uid: [
                gid for gid, members in self.members.items() if any(m["id"] == uid for m in members)
            ]
            for uid in user_ids
            if uid in self.users
        }

    async def subscribed_skus(self) -> list[JSON]:
        self._count("subscribed_skus")
        return copy.deepcopy(self.skus)

    async def organization(self) -> JSON | None:
        self._count("organization")
        return copy.deepcopy(self.orgs[0]) if self.orgs else None

    def _has_error_from(self, user_id: str, group_id: str) -> bool:
        states = self.users.get(user_id, {}).get("licenseAssignmentStates") or []
        return any(s.get("assignedByGroup") == group_id and _in_error(s) for s in states)

    async def groups_with_license_errors(self) -> list[str]:
        self._count("groups_with_license_errors")
        return [
            gid
            for gid in self.groups
            if any(self._has_error_from(uid, gid) for uid in self._user_member_ids(gid))
        ]

    async def members_with_license_errors(self, group_id: str) -> list[str]:
        self._count("members_with_license_errors")
        if group_id not in self.groups:
            return []
        return [
            uid for uid in self._user_member_ids(group_id) if self._has_error_from(uid, group_id)
        ]

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        self._count("reprocess_license_assignment")
        if user_id not in self.users:
            return False
        self.reprocessed.append(user_id)
        self.record_audit(
            "Change user license",
            [_target(self.users[user_id], "User")],
            actor=self.app_display_name,
            category="UserManagement",
        )
        return True

    # ------------------------------------------------------------------ paging, audits, mail
    def _page_from(self, next_link: str | None, path: str) -> tuple[int, dict[str, list[str]]]:
        if next_link is None:
            return 0, {}
        parts = urlsplit(next_link)
        query = parse_qs(parts.query)
        token = (query.get("$skiptoken") or [""])[0]
        if parts.scheme != "fake" or unquote(parts.path) != path or not token.isdigit():
            raise DirectoryError(400, "Request_BadRequest", "Invalid $skiptoken value.")
        return int(token), query

    def _link(self, path: str, pos: int, **params: str) -> str:
        extra = "".join(f"&{k}={quote(v, safe=',')}" for k, v in params.items())
        return f"fake://graph/v1.0{quote(path)}?$top={self.page_size}{extra}&$skiptoken={pos}"

    async def users_page(
        self, next_link: str | None, *, select: str = USER_SELECT
    ) -> tuple[list[JSON], str | None]:
        self._count("users_page")
        pos, query = self._page_from(next_link, "/v1.0/users")
        if next_link is not None:
            select = (query.get("$select") or [select])[0]
        fields = tuple(f for f in select.split(",") if f)
        ids = sorted(self.users)
        end = pos + self.page_size
        page = [_project(self.users[uid], fields) for uid in ids[pos:end]]
        more = self._link("/users", end, **{"$select": select}) if end < len(ids) else None
        return page, more

    async def group_members_page(
        self, group_id: str, next_link: str | None, *, nested: list[str] | None = None
    ) -> tuple[list[str], str | None]:
        self._count("group_members_page")
        if next_link is not None:
            path = unquote(urlsplit(next_link).path)
            group_id = path.removeprefix("/v1.0/groups/").removesuffix("/members")
        pos, _ = self._page_from(next_link, f"/v1.0/groups/{group_id}/members")
        if group_id not in self.groups:
            raise DirectoryError(404, "Request_ResourceNotFound", f"Resource '{group_id}'")
        members = self.members[group_id]  # pages count every member, as Graph's do
        end = pos + self.page_size
        ids = [m["id"] for m in members[pos:end] if m["@odata.type"] == USER_TYPE]
        if nested is not None:
            nested.extend(m["id"] for m in members[pos:end] if m["@odata.type"] == GROUP_TYPE)
        more = self._link(f"/groups/{group_id}/members", end) if end < len(members) else None
        return ids, more

    async def directory_audits(self, since: str, activities: Sequence[str] = ()) -> list[JSON]:
        self._count("directory_audits")
        start = _parse_iso(since)
        wanted = set(activities)
        found = [
            copy.deepcopy(e)
            for e in self.audits
            if _parse_iso(str(e.get("activityDateTime"))) >= start
            and (not wanted or e.get("activityDisplayName") in wanted)
        ]
        found.sort(key=lambda e: _parse_iso(str(e["activityDateTime"])), reverse=True)
        return found

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        self._count("send_mail")
        if self._send_failures:
            status, retry_after = self._send_failures.pop(0)
            code = _FAIL_CODES.get(status, f"HTTP{status}")
            raise DirectoryError(status, code, "Simulated sendMail failure.", retry_after)
        known = sender in self.users or any(
            str(u.get("userPrincipalName", "")).lower() == sender.lower()
            for u in self.users.values()
        )
        if not known:
            raise DirectoryError(
                404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid."
            )
        _check_message(message)
        self.sent_mail.append(
            {
                "sender": sender,
                "message": copy.deepcopy(message),
                "saveToSentItems": save_to_sent_items,
            }
        )

    def _mailbox(self, sender: str) -> None:
        known = sender in self.users or any(
            str(u.get("userPrincipalName", "")).lower() == sender.lower()
            for u in self.users.values()
        )
        if not known:
            raise DirectoryError(
                404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid."
            )

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        self._count("find_draft")
        self._mailbox(sender)
        for draft_id, draft in self.drafts.items():
            if draft["sender"] == sender and draft["internetMessageId"] == internet_message_id:
                return draft_id
        return None

    async def create_draft(self, sender: str, mime: bytes) -> str:
        self._count("create_draft")
        self._mailbox(sender)
        message = _message_from_mime(mime)
        _check_message(message)
        draft_id = f"draft-{uuid.uuid4().hex}"
        self.drafts[draft_id] = {
            "sender": sender,
            "internetMessageId": message.get("internetMessageId") or f"<{draft_id}@fake>",
            "message": message,
            "mime": mime,
        }
        self._answer_lost("create_draft")
        return draft_id

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        self._count("send_draft")
        if self._send_failures:
            status, retry_after = self._send_failures.pop(0)
            code = _FAIL_CODES.get(status, f"HTTP{status}")
            raise DirectoryError(status, code, "Simulated send failure.", retry_after)
        self._mailbox(sender)
        draft = self.drafts.get(draft_id)
        if draft is None or draft["sender"] != sender:
            return False
        del self.drafts[draft_id]
        self.sent_mail.append(
            {
                "sender": sender,
                "message": copy.deepcopy(draft["message"]),
                "saveToSentItems": True,
                "mime": draft["mime"],
                "draftId": draft_id,
            }
        )
        self._answer_lost("send_draft")
        return True

    # ------------------------------------------------------------------ subscriptions
    def _expiry(self, expiration: str) -> str:
        try:
            when = _parse_iso(expiration)
        except ValueError:
            raise DirectoryError(
                400, "InvalidRequest", f"Invalid expirationDateTime '{expiration}'."
            ) from None
        now = self._now()
        if when <= now:
            raise DirectoryError(
                400, "InvalidRequest", "Subscription expiration can only be in the future."
            )
        if when > now + timedelta(minutes=SUBSCRIPTION_MAX_MINUTES):
            raise DirectoryError(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {SUBSCRIPTION_MAX_MINUTES} minutes "
                "in the future.",
            )
        return _iso(when)

    async def subscriptions(self) -> list[Subscription]:
        self._count("subscriptions")
        return list(self._subs.values())

    async def subscription(self, subscription_id: str) -> Subscription | None:
        self._count("subscription")
        return self._subs.get(subscription_id)

    async def create_subscription(
        self,
        *,
        resource: str,
        change_type: str,
        notification_url: str,
        lifecycle_notification_url: str,
        client_state: str,
        expiration: str,
    ) -> Subscription:
        self._count("create_subscription")
        sub = Subscription(
            id=str(uuid.uuid4()),
            resource=resource,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_notification_url,
            expiration=self._expiry(expiration),
        )
        self._subs[sub.id] = sub
        return sub

    def _sub(self, subscription_id: str) -> Subscription:
        sub = self._subs.get(subscription_id)
        if sub is None:
            raise DirectoryError(
                404, "ResourceNotFound", f"The object '{subscription_id}' was not found."
            )
        return sub

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        self._count("renew_subscription")
        old = self._sub(subscription_id)
        new = Subscription(
            id=old.id,
            resource=old.resource,
            change_type=old.change_type,
            notification_url=old.notification_url,
            lifecycle_notification_url=old.lifecycle_notification_url,
            expiration=self._expiry(expiration),
        )
        self._subs[old.id] = new
        return new

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        self._count("reauthorize_subscription")
        self._sub(subscription_id)

    async def delete_subscription(self, subscription_id: str) -> None:
        self._count("delete_subscription")
        self._subs.pop(subscription_id, None)


if TYPE_CHECKING:

    def _is_a_directory(directory: FakeDirectory) -> Directory:
        return directory  # mypy checks FakeDirectory against the port
