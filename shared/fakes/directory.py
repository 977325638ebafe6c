"""`FakeDirectory`: the `Directory` port in memory, for fast service-layer tests.

Built from a tenant snapshot (the README's format: `subscribedSkus`, `groups` with `members`,
`users`, optional `organization`). It follows the same contract test suite as
`GraphDirectory`, so it behaves like Graph where the port says anything: delta rounds (an
initial round lists every member, later rounds only what changed since the token, an unknown
or expired token raises `DeltaTokenExpired`), unknown ids are absent (a GUID is found in any
case by `users_by_id`, `member_of`, `group_configs` and `reprocess_license_assignment`),
reprocess of a missing user is False, subscriptions expire within Graph's 41,760-minute limit.

The state and the test hands live in `shared.fakes.tenant` (`FakeTenant`), mail in
`shared.fakes.mailbox`, subscriptions in `shared.fakes.subscriptions`; this module holds the
reads, delta rounds, paging and the reprocess write. Test hands: `add_member`,
`remove_member`, `set_group_licenses`, `set_user_state`, `delete_group`, `expire_delta_tokens`,
`reset_delta_sync`, `fail_next_send_mail`, `lose_next_answer`, `user_count_error`,
`users_page_fault`, `listed_with_errors`, `granted_app_roles`, `protected_users`;
observations: `reprocessed` (user ids, in order), `drafts`, `sent_mail` (one dict per accepted
sendMail or sent draft: `sender`, `message`, `saveToSentItems`; a sent draft adds `mime` and
`draftId`) and `requests` (calls per port method; `request_count` is the total).

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
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from shared.core.graph_values import parse_graph_time
from shared.fakes.mailbox import FakeMailbox
from shared.fakes.subscriptions import FakeSubscriptions
from shared.fakes.tenant import ADDED, DELETED, GROUP_TYPE, USER_TYPE, audit_target
from shared.ports.audit_entries import AuditEntry
from shared.ports.directory import (
    GROUP_SELECT,
    JSON,
    USER_SELECT,
    DeltaRound,
    DeltaTokenExpired,
    Directory,
    DirectoryError,
    GroupConfig,
    GroupDelta,
    delta_filter_ids,
    group_configs_by_id,
    licenses_from_graph,
)

_NO_ERROR = (None, "", "None")
PROTECTED_USER_MESSAGE = "Insufficient privileges to complete the operation."
"""Graph's Authorization_RequestDenied message, the same whether the app lacks the permission
or the user is out of its reach."""
_USER_FIELDS = tuple(USER_SELECT.split(","))
_GROUP_FIELDS = tuple(GROUP_SELECT.split(","))


def _project(obj: Mapping[str, Any], fields: Sequence[str]) -> JSON:
    """Graph's $select: every selected field, null when the object has none."""
    return {f: copy.deepcopy(obj.get(f)) for f in fields}


def _in_error(state: Mapping[str, Any]) -> bool:
    return state.get("state") == "Error" or state.get("error") not in _NO_ERROR


class FakeDirectory(FakeMailbox, FakeSubscriptions):
    """In-memory Graph for one tenant snapshot (see `FakeTenant` for the constructor)."""

    def _user_member_ids(self, group_id: str) -> list[str]:
        return [
            m["id"]
            for m in self.members.get(group_id, [])
            if m["@odata.type"] == USER_TYPE and m["id"] in self.users
        ]

    async def licensed_group_configs(self) -> list[GroupConfig]:
        self._count("licensed_group_configs")
        licensed = (
            _project(g, _GROUP_FIELDS) for g in self.groups.values() if g["assignedLicenses"]
        )
        return list(group_configs_by_id(licensed).values())

    async def group_configs(self, group_ids: Sequence[str]) -> dict[str, GroupConfig]:
        self._count("group_configs")
        for group_id in group_ids:
            _object_id(group_id)
        found = (_by_id(self.groups, gid) for gid in group_ids)
        return group_configs_by_id(_project(g, _GROUP_FIELDS) for g in found if g)

    async def group_member_ids(self, group_id: str) -> list[str]:
        self._count("group_member_ids")
        if group_id not in self.groups:
            raise DirectoryError(404, "Request_ResourceNotFound", f"Resource '{group_id}'")
        return [m["id"] for m in self.members[group_id] if m["@odata.type"] == USER_TYPE]

    async def group_delta(self, group_ids: Sequence[str], delta_link: str | None) -> DeltaRound:
        self._count("group_delta")
        if delta_link is None:
            ids = delta_filter_ids(group_ids)
            groups = {
                gid: GroupDelta(
                    group_id=gid,
                    added=frozenset(self.group_member_ids_now(gid)),
                    nested_added=frozenset(
                        m["id"] for m in self.members[gid] if m["@odata.type"] == GROUP_TYPE
                    ),
                    **self._delta_properties(gid),
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

    def _delta_properties(self, group_id: str) -> dict[str, Any]:
        """The selected properties a delta round carries for a changed group, typed."""
        group = self.groups[group_id]
        name = group.get("displayName")
        return {
            "licenses": licenses_from_graph(group.get("assignedLicenses")),
            "display_name": str(name) if name else None,
        }

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
            if kind == DELETED:
                deleted.add(gid)
            elif mid is not None:
                members[mid] = kind == ADDED
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
                **self._delta_properties(gid),
            )
        return out

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        """Keyed by the id (or UPN) as asked; found whatever its case, as Graph finds a GUID
        (whose ids are lower-case) or a userPrincipalName: the user carries the stored id."""
        self._count("users_by_id")
        found = {uid: _by_id(self.users, uid) or self._by_upn(uid) for uid in user_ids}
        return {uid: _project(user, _USER_FIELDS) for uid, user in found.items() if user}

    def _by_upn(self, key: str) -> JSON | None:
        if "@" not in key:
            return None
        wanted = key.lower()
        upn = (u for u in self.users.values() if str(u.get("userPrincipalName")).lower() == wanted)
        return next(upn, None)

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        self._count("member_of")
        found = {uid: _by_id(self.users, uid) for uid in user_ids}
        return {
            uid: list(self.groups_of.get(user["id"], ())) for uid, user in found.items() if user
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

    listed_with_errors: Mapping[str, Sequence[str]] = {}
    """A test hand: users Graph lists in a group's `membersWithLicenseErrors` beyond those whose
    states say so (group id → user ids): Graph's two fields disagree."""

    async def members_with_license_errors(self, group_id: str) -> list[str]:
        self._count("members_with_license_errors")
        if group_id not in self.groups:
            return []
        found = [
            uid for uid in self._user_member_ids(group_id) if self._has_error_from(uid, group_id)
        ]
        return [*found, *self.listed_with_errors.get(group_id, ())]

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        self._count("reprocess_license_assignment")
        user = _by_id(self.users, user_id)
        if user is None:
            return False
        if user["id"] in self.protected_users:
            raise DirectoryError(403, "Authorization_RequestDenied", PROTECTED_USER_MESSAGE)
        self.reprocessed.append(user["id"])
        self.record_audit(
            "Change user license",
            [audit_target(user, "User")],
            actor=self.app_display_name,
            category="UserManagement",
            app_id=self.app_id,
        )
        return True

    granted_app_roles: frozenset[str] | None = None
    """What `app_roles` answers (a test hand): the app roles of the app's token; None, as
    for a static token, not known."""
    protected_users: frozenset[str] = frozenset()
    """Users whose reprocess Graph refuses with 403 whatever the app holds (a test hand: a
    member of a restricted management administrative unit, a privileged user)."""

    async def app_roles(self) -> frozenset[str] | None:
        self._count("app_roles")
        return self.granted_app_roles

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

    user_count_error: DirectoryError | None = None
    """What `user_count` raises when set (a test hand: a 403, a tenant without `$count`)."""

    async def user_count(self) -> int:
        self._count("user_count")
        if self.user_count_error is not None:
            raise self.user_count_error
        return len(self.users)

    users_page_fault: Callable[[str | None], Exception | None] | None = None
    """A test hand: called with each `users_page` call's next link; what it returns is raised
    (a page token Graph refuses, an outage, a process killed mid-scan), None: the page."""

    async def users_page(
        self, next_link: str | None, *, select: str = USER_SELECT
    ) -> tuple[list[JSON], str | None]:
        self._count("users_page")
        if self.users_page_fault is not None and (fault := self.users_page_fault(next_link)):
            raise fault
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

    async def directory_audits(
        self, since: str, activities: Sequence[str] = ()
    ) -> list[AuditEntry]:
        self._count("directory_audits")
        start = parse_graph_time(since)
        wanted = set(activities)
        found = [
            copy.deepcopy(e)
            for e in self.audits
            if parse_graph_time(str(e.get("activityDateTime"))) >= start
            and (not wanted or e.get("activityDisplayName") in wanted)
        ]
        found.sort(key=lambda e: parse_graph_time(str(e["activityDateTime"])), reverse=True)
        return [AuditEntry.from_graph(e) for e in found]


def _by_id(objects: Mapping[str, JSON], object_id: str) -> JSON | None:
    """The object Graph finds by `object_id`: a GUID in any case (its ids are lower-case)."""
    return objects.get(object_id) or objects.get(object_id.lower())


def _object_id(key: str) -> None:
    """Graph reads a group by its object id only: any other key (a name) is 400 "Invalid
    object identifier" (microsoft-graph-docs-contrib#3854), not an absent group."""
    try:
        uuid.UUID(key)
    except ValueError:
        raise DirectoryError(
            400, "Request_BadRequest", f"Invalid object identifier '{key}'."
        ) from None


if TYPE_CHECKING:

    def _is_a_directory(directory: FakeDirectory) -> Directory:
        return directory  # mypy checks FakeDirectory against the port
