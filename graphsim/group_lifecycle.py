"""Group deletion and restore: security groups are deleted for good, Microsoft 365 groups are
soft-deleted (restorable for 30 days from `directory/deletedItems`, memberships included), and
a synchronization reset that invalidates every delta token issued so far.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from .audit import audit_target
from .change_log import DELETED, RESTORED
from .clock import iso, parse_iso
from .errors import bad_request, not_found
from .memberships import USER_TYPE
from .tenant import Tenant

Obj = dict[str, Any]
SOFT_DELETE_DAYS = 30  # Microsoft 365 groups stay restorable this long


class GroupLifecycle(Tenant):
    """Delete, look up deleted, restore; and the delta synchronization reset."""

    def delete_group(
        self,
        gid: str,
        who: str,
        *,
        permanent: bool | None = None,
        change_type: str | None = None,
    ) -> None:
        """Delete a group. Microsoft 365 groups are soft-deleted by default (restorable for 30
        days; delta says `@removed: {"reason": "changed"}`), security groups are gone for good
        ("deleted"). The change notification says `changeType` "deleted", or what
        `change_type` / x-graphsim `groupDeletedChangeType` says (Graph has sent "updated")."""
        group = self.group(gid)
        if group.get("assignedLicenses"):
            raise bad_request(
                "The group has licenses assigned; remove them before deleting the group."
            )
        if permanent is None:
            permanent = "Unified" not in (group.get("groupTypes") or ())
        for mid in list(self.member_ids.get(gid, ())):
            if mid in self.index:
                self.index[mid].discard(gid)
        del self.groups[gid]
        self.member_ids.pop(gid, None)
        self.synced_groups.discard(gid)
        reason = "deleted" if permanent else "changed"
        self.deleted_groups[gid] = reason
        if not permanent:
            group["deletedDateTime"] = iso(self.clock.now())
            self.soft_deleted[gid] = group
        self.audit.record("Delete group", "GroupManagement", who, [audit_target(group, "Group")])
        notify = change_type or str(self.x.get("groupDeletedChangeType") or "deleted")
        self._changed(gid, DELETED, reason, notify=notify)

    def deleted_group(self, gid: str) -> Obj:
        """A soft-deleted group still restorable (404 once purged after 30 days)."""
        group = self.soft_deleted.get(gid)
        if group is not None:
            deleted_at = parse_iso(str(group["deletedDateTime"]))
            if self.clock.now() - deleted_at > timedelta(days=SOFT_DELETE_DAYS):
                del self.soft_deleted[gid]
                self.deleted_groups[gid] = "deleted"
                group = None
        if group is None:
            raise not_found(gid)
        return group

    def restore_group(self, gid: str, who: str) -> Obj:
        """Restore a soft-deleted group with its memberships (and so the members' licenses)."""
        group = self.deleted_group(gid)
        del self.soft_deleted[gid]
        self.deleted_groups.pop(gid, None)
        group.pop("deletedDateTime", None)
        self.groups[gid] = group
        self.member_ids[gid] = {m["id"] for m in group["members"]}
        for m in group["members"]:
            if m.get("@odata.type") == USER_TYPE:
                self.index.setdefault(m["id"], set()).add(gid)
        if group.get("onPremisesSyncEnabled"):
            self.synced_groups.add(gid)
        self.audit.record("Restore group", "GroupManagement", who, [audit_target(group, "Group")])
        self._changed(gid, RESTORED)
        return group

    def reset_delta_sync(self) -> None:
        """A synchronization reset: every delta token issued so far now answers 410 Gone."""
        self.delta_generation = uuid.uuid4().hex[:8]
