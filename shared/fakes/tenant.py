"""`FakeTenant`: the state behind `FakeDirectory`, and the test hands that change it.

One tenant snapshot in memory (the README's format: `subscribedSkus`, `groups` with `members`,
`users`, optional `organization`, `directoryAudits`), the change log delta rounds are cut from,
the handed-out delta tokens, and what tests observe (`reprocessed`, `sent_mail`, `drafts`,
`requests`). The mutators (`add_member`, `remove_member`, `set_group_licenses`,
`set_user_state`, `delete_group`) append audit entries shaped like Graph's ("Add member to
group", "Remove member from group", "Set group license", "Delete group") stamped with `now()`,
initiated by `actor` (a UPN: `initiatedBy.user`; anything else: `initiatedBy.app.displayName`),
by default `admin_upn`. The port's behaviour over this state is in `shared.fakes.directory`,
`shared.fakes.mailbox` and `shared.fakes.subscriptions`.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.ports.directory import JSON, Subscription

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"

# change-log kinds
ADDED, REMOVED, PROPS, DELETED = "added", "removed", "props", "deleted"


def graph_iso(moment: datetime) -> str:
    """A timestamp as Graph writes it (UTC, microseconds, `Z`)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def audit_target(obj: Mapping[str, Any], kind: str, modified: list[JSON] | None = None) -> JSON:
    return {
        "id": obj.get("id"),
        "displayName": obj.get("displayName"),
        "type": kind,
        "userPrincipalName": obj.get("userPrincipalName"),
        "groupType": None,
        "modifiedProperties": modified or [],
    }


def initiated_by(actor: str, app_id: str | None = None) -> JSON:
    """Graph's auditActivityInitiator: a user for a UPN, else an app with this displayName
    (and `app_id`, its client id, when given)."""
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
            "appId": app_id,
            "displayName": actor,
            "servicePrincipalId": None,
            "servicePrincipalName": None,
        },
    }


class FakeTenant:
    """In-memory state of one tenant snapshot. `now` drives subscription expiry checks and
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
        self.app_id: str | None = None
        """Its client id in those audit entries (`initiatedBy.app.appId`; a test hand: the
        identity the app calls Graph as)."""
        self.users: dict[str, JSON] = {u["id"]: u for u in data.get("users") or []}
        self.groups: dict[str, JSON] = {}
        self.members: dict[str, list[JSON]] = {}
        self.groups_of: dict[str, dict[str, None]] = {}
        """Member id -> the ids of the groups it is a direct member of (`member_of` answers
        from it; the mutators keep it)."""
        for group in data.get("groups") or []:
            members = group.pop("members", None) or []
            group.setdefault("assignedLicenses", [])
            self.groups[group["id"]] = group
            self.members[group["id"]] = [
                {"@odata.type": m.get("@odata.type", USER_TYPE), "id": m["id"]} for m in members
            ]
            for m in members:
                self.groups_of.setdefault(m["id"], {})[group["id"]] = None
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
        app_id: str | None = None,
    ) -> JSON:
        """Append one directoryAudit entry (Graph's shape), stamped with `now()`; an app
        `actor` with `app_id`, its client id."""
        entry: JSON = {
            "id": f"Directory_{uuid.uuid4()}",
            "category": category,
            "correlationId": str(uuid.uuid4()),
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": graph_iso(self._now()),
            "loggedByService": "Core Directory",
            "operationType": "Update" if "license" in activity.lower() else "Assign",
            "initiatedBy": initiated_by(actor or self.admin_upn, app_id),
            "targetResources": targets,
            "additionalDetails": [],
        }
        self.audits.append(entry)
        return entry

    def _record_membership(
        self, activity: str, group_id: str, member_id: str, mtype: str, actor: str | None
    ) -> None:
        """The audit entry of a membership change: the member (user or group), then the group."""
        if mtype == USER_TYPE:
            member = audit_target(self.users.get(member_id) or {"id": member_id}, "User")
        else:
            member = audit_target(self.groups.get(member_id) or {"id": member_id}, "Group")
        group = audit_target(self.groups[group_id], "Group")
        self.record_audit(activity, [member, group], actor=actor)

    def add_member(self, group_id: str, user_id: str, *, actor: str | None = None) -> None:
        members = self.members[group_id]
        if any(m["id"] == user_id for m in members):
            raise ValueError(f"{user_id} is already a member of {group_id}")
        mtype = USER_TYPE if user_id in self.users else "#microsoft.graph.group"
        members.append({"@odata.type": mtype, "id": user_id})
        self.groups_of.setdefault(user_id, {})[group_id] = None
        self._log.append((group_id, ADDED, user_id))
        self._record_membership("Add member to group", group_id, user_id, mtype, actor)

    def remove_member(self, group_id: str, user_id: str, *, actor: str | None = None) -> None:
        members = self.members[group_id]
        kept = [m for m in members if m["id"] != user_id]
        if len(kept) == len(members):
            raise ValueError(f"{user_id} is not a member of {group_id}")
        mtype = next(m["@odata.type"] for m in members if m["id"] == user_id)
        self.members[group_id] = kept
        self.groups_of[user_id].pop(group_id, None)
        self._log.append((group_id, REMOVED, user_id))
        self._record_membership("Remove member from group", group_id, user_id, mtype, actor)

    def set_group_licenses(
        self, group_id: str, assigned: list[JSON], *, actor: str | None = None
    ) -> None:
        """Replace the group's assignedLicenses ([{skuId, disabledPlans}])."""
        group = self.groups[group_id]
        group["assignedLicenses"] = copy.deepcopy(assigned)
        self._log.append((group_id, PROPS, None))
        modified = [
            {
                "displayName": "AssignedLicense",
                "oldValue": None,
                "newValue": json.dumps(group["assignedLicenses"], separators=(",", ":")),
            }
        ]
        self.record_audit(
            "Set group license", [audit_target(group, "Group", modified)], actor=actor
        )

    def set_user_state(self, user_id: str, **fields: Any) -> None:
        """Overwrite user fields, e.g. licenseAssignmentStates=[...], usageLocation="DE"."""
        self.users[user_id].update(copy.deepcopy(fields))

    def delete_group(self, group_id: str, *, actor: str | None = None) -> None:
        group = self.groups.pop(group_id)
        for member in self.members.pop(group_id):
            self.groups_of[member["id"]].pop(group_id, None)
        self._log.append((group_id, DELETED, None))
        self.record_audit("Delete group", [audit_target(group, "Group")], actor=actor)

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
