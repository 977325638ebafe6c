"""Membership writes: add and remove group members (by Graph, by an admin, or by the on-prem
sync cycle), with the audit entry, the change-log entry and the licensing work they cause.
Groups synced from on-premises refuse cloud writes; their changes wait for the next sync.
"""

from __future__ import annotations

from typing import Any

from .audit import audit_target
from .change_log import ADDED, REMOVED
from .clock import iso
from .errors import GraphError, bad_request, not_found
from .memberships import GROUP_TYPE, USER_TYPE
from .tenant import Tenant

Obj = dict[str, Any]


class MembershipChanges(Tenant):
    """Member additions and removals, and the on-prem sync cycle that applies queued ones."""

    def add_member(self, gid: str, mid: str, who: str, *, enforce_onprem: bool = True) -> None:
        group = self.group(gid)
        if enforce_onprem and gid in self.synced_groups:
            raise onprem_error()
        obj = self.member_object(mid)
        if obj is None:
            raise not_found(mid)
        if mid in self.member_ids[gid]:
            raise bad_request(
                "One or more added object references already exist for the following "
                "modified properties: 'members'."
            )
        mtype = USER_TYPE if mid in self.users else GROUP_TYPE
        group["members"].append({"@odata.type": mtype, "id": mid})
        self.member_ids[gid].add(mid)
        if mtype == USER_TYPE:
            self.index.setdefault(mid, set()).add(gid)
        self._audit_membership("Add member to group", who, obj, mtype, group)
        self._changed(gid, ADDED, mid, mtype)
        if mtype == USER_TYPE and group.get("assignedLicenses"):
            self.schedule(gid, [mid])

    def remove_member(self, gid: str, mid: str, who: str, *, enforce_onprem: bool = True) -> None:
        group = self.group(gid)
        if enforce_onprem and gid in self.synced_groups:
            raise onprem_error()
        if mid not in self.member_ids[gid]:
            raise not_found(mid)
        members = group["members"]
        mtype = USER_TYPE
        for i, m in enumerate(members):
            if m["id"] == mid:
                mtype = m.get("@odata.type", USER_TYPE)
                del members[i]
                break
        self.member_ids[gid].discard(mid)
        if mid in self.index:
            self.index[mid].discard(gid)
        obj = self.member_object(mid) or {"id": mid}
        self._audit_membership("Remove member from group", who, obj, mtype, group)
        self._changed(gid, REMOVED, mid, mtype)
        if mtype == USER_TYPE and (
            group.get("assignedLicenses") or self._user_has_any_from(mid, gid)
        ):
            self.schedule(gid, [mid])

    def _audit_membership(self, activity: str, who: str, obj: Obj, mtype: str, group: Obj) -> None:
        """The audit entry of a membership change: the member (user or group), then the group."""
        kind = "User" if mtype == USER_TYPE else "Group"
        targets = [audit_target(obj, kind), audit_target(group, "Group")]
        self.audit.record(activity, "GroupManagement", who, targets)

    def _user_has_any_from(self, uid: str, gid: str) -> bool:
        return any(
            st.get("assignedByGroup") == gid
            for st in self.users.get(uid, {}).get("licenseAssignmentStates") or ()
        )

    def queue_onprem_change(self, op: str, gid: str, uid: str) -> None:
        self.group(gid)
        if op not in ("add", "remove"):
            raise bad_request("op must be 'add' or 'remove'.")
        self.pending_onprem.append({"op": op, "groupId": gid, "userId": uid})

    def run_sync_cycle(self) -> Obj:
        """Apply queued on-prem membership changes, then stamp onPremisesLastSyncDateTime."""
        applied = 0
        skipped = 0
        pending, self.pending_onprem = self.pending_onprem, []
        for change in pending:
            try:
                if change["op"] == "add":
                    self.add_member(
                        change["groupId"], change["userId"], "sync", enforce_onprem=False
                    )
                else:
                    self.remove_member(
                        change["groupId"], change["userId"], "sync", enforce_onprem=False
                    )
                applied += 1
            except GraphError:
                skipped += 1
        now = iso(self.clock.now())
        for org in self.organization:
            org["onPremisesLastSyncDateTime"] = now
            org["onPremisesSyncEnabled"] = True
        return {"applied": applied, "skipped": skipped, "onPremisesLastSyncDateTime": now}


def onprem_error() -> GraphError:
    return bad_request(
        "Unable to update the specified properties for on-premises mastered Directory Sync "
        "objects or objects currently undergoing migration."
    )
