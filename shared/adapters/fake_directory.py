"""`FakeDirectory`: the `Directory` port in memory, for fast service-layer tests.

Built from a tenant snapshot (the README's format: `subscribedSkus`, `groups` with `members`,
`users`, optional `organization`). It follows the same contract test suite as
`GraphDirectory`, so it behaves like Graph where the port says anything: delta rounds (an
initial round lists every member, later rounds only what changed since the token, an unknown
or expired token raises `DeltaTokenExpired`), unknown ids are absent, reprocess of a missing
user is False, subscriptions expire within Graph's 41,760-minute limit.

Test hands: `add_member`, `remove_member`, `set_group_licenses`, `set_user_state`,
`delete_group`, `expire_delta_tokens`; observations: `reprocessed` (user ids, in order) and
`requests` (calls per port method; `request_count` is the total).
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.directory import (
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


def _in_error(state: Mapping[str, Any]) -> bool:
    return state.get("state") == "Error" or state.get("error") not in _NO_ERROR


class FakeDirectory:
    """In-memory Graph for one tenant snapshot. `now` drives subscription expiry checks."""

    def __init__(
        self, snapshot: Mapping[str, Any], *, now: Callable[[], datetime] | None = None
    ) -> None:
        data = copy.deepcopy(dict(snapshot))
        self._now = now or (lambda: datetime.now(UTC))
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
        self.requests: Counter[str] = Counter()
        self._subs: dict[str, Subscription] = {}
        self._log: list[tuple[str, str, str | None]] = []  # (group id, kind, member id)
        self._tokens: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._token_ids = itertools.count(1)

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    # ------------------------------------------------------------------ test hands
    def add_member(self, group_id: str, user_id: str) -> None:
        members = self.members[group_id]
        if any(m["id"] == user_id for m in members):
            raise ValueError(f"{user_id} is already a member of {group_id}")
        mtype = USER_TYPE if user_id in self.users else "#microsoft.graph.group"
        members.append({"@odata.type": mtype, "id": user_id})
        self._log.append((group_id, _ADDED, user_id))

    def remove_member(self, group_id: str, user_id: str) -> None:
        members = self.members[group_id]
        kept = [m for m in members if m["id"] != user_id]
        if len(kept) == len(members):
            raise ValueError(f"{user_id} is not a member of {group_id}")
        self.members[group_id] = kept
        self._log.append((group_id, _REMOVED, user_id))

    def set_group_licenses(self, group_id: str, assigned: list[JSON]) -> None:
        """Replace the group's assignedLicenses ([{skuId, disabledPlans}])."""
        self.groups[group_id]["assignedLicenses"] = copy.deepcopy(assigned)
        self._log.append((group_id, _PROPS, None))

    def set_user_state(self, user_id: str, **fields: Any) -> None:
        """Overwrite user fields, e.g. licenseAssignmentStates=[...], usageLocation="DE"."""
        self.users[user_id].update(copy.deepcopy(fields))

    def delete_group(self, group_id: str) -> None:
        del self.groups[group_id]
        del self.members[group_id]
        self._log.append((group_id, _DELETED, None))

    def expire_delta_tokens(self) -> None:
        """Every delta link handed out so far becomes unknown (as after 7 days)."""
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
                    properties=_project(self.groups[gid], DELTA_PROPERTIES),
                )
                for gid in ids
                if gid in self.groups
            }
            return DeltaRound(groups, self._issue(ids), initial=True)
        token = self._tokens.get(delta_link)
        if token is None:
            raise DeltaTokenExpired(
                410, "syncStateNotFound", "The sync state is not found or has expired."
            )
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
            out[gid] = GroupDelta(
                group_id=gid,
                added=frozenset(m for m, a in user_changes.items() if a),
                removed=frozenset(m for m, a in user_changes.items() if not a),
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
