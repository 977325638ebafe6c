"""License writes: `assignLicense` on groups and users, `reprocessLicenseAssignment`, and the
admin knobs that change a licensing outcome (seats, usage location, account state, duplicate
proxy addresses). Refusals use Graph's error messages.
"""

from __future__ import annotations

from typing import Any

import orjson

from .audit import audit_target
from .change_log import PROPS
from .clock import iso
from .errors import GraphError, bad_request, not_found
from .license_rules import LicensingRules
from .tenant import Tenant

Obj = dict[str, Any]


class LicenseChanges(Tenant):
    """Group and user license assignment, reprocessing, and licensing-relevant admin changes."""

    def _check_licenses(self, add: list[Obj], remove: list[str]) -> tuple[list[Obj], list[str]]:
        if not isinstance(add, list) or not isinstance(remove, list):
            raise bad_request("addLicenses and removeLicenses must be collections.")
        clean_add: list[Obj] = []
        for lic in add:
            sku = str((lic or {}).get("skuId", "")).lower()
            match = next((s for s in self.skus if s.lower() == sku), None)
            if match is None:
                raise bad_request(
                    f"License {sku or '<empty>'} does not correspond to a valid company License."
                )
            clean_add.append(
                {"disabledPlans": list(lic.get("disabledPlans") or []), "skuId": match}
            )
        clean_remove: list[str] = []
        for sku_raw in remove:
            sku = str(sku_raw).lower()
            match = next((s for s in self.skus if s.lower() == sku), None)
            if match is None:
                raise bad_request(f"License {sku} does not correspond to a valid company License.")
            clean_remove.append(match)
        return clean_add, clean_remove

    def set_group_licenses(self, gid: str, add: list[Obj], remove: list[str], who: str) -> Obj:
        group = self.group(gid)
        clean_add, clean_remove = self._check_licenses(add, remove)
        if clean_add and group.get("securityEnabled") is not True:
            # Group-based licensing works only with security groups and security-enabled
            # Microsoft 365 groups: distribution lists and securityEnabled=false M365 groups
            # are refused up front.
            raise bad_request(
                "License assignment is supported only for security groups and Microsoft 365 "
                "groups that have securityEnabled=true.",
                code="Request_BadRequest",
            )
        current = {a["skuId"]: a for a in group.get("assignedLicenses") or []}
        for sku in clean_remove:
            current.pop(sku, None)
        for lic in clean_add:
            current[lic["skuId"]] = lic
        group["assignedLicenses"] = list(current.values())
        self.audit.record(
            "Set group license",
            "GroupManagement",
            who,
            [
                audit_target(
                    group,
                    "Group",
                    [
                        {
                            "displayName": "AssignedLicense",
                            "oldValue": None,
                            "newValue": orjson.dumps(group["assignedLicenses"]).decode(),
                        }
                    ],
                )
            ],
        )
        self._changed(gid, PROPS, "assignedLicenses")
        self.schedule(gid, self.user_member_ids(gid))
        return group

    def assign_user_license(self, uid: str, add: list[Obj], remove: list[str], who: str) -> Obj:
        user = self.user(uid)
        clean_add, clean_remove = self._check_licenses(add, remove)
        if clean_add and not user.get("usageLocation"):
            # Direct assignment needs the user's usage location (only group assignment falls
            # back to the tenant's country).
            raise bad_request(
                "License assignment cannot be done for user with invalid usage location."
            )
        states: list[Obj] = user.setdefault("licenseAssignmentStates", [])
        for sku in clean_remove:
            direct = [s for s in states if s.get("skuId") == sku and not s.get("assignedByGroup")]
            if not direct:
                inherited = any(s.get("skuId") == sku for s in states)
                raise bad_request(
                    "User license is inherited from a group membership and it cannot be removed "
                    "directly from the user."
                    if inherited
                    else f"User does not have a corresponding license {sku}."
                )
            for s in direct:
                states.remove(s)
        now = iso(self.clock.now())
        seated = {a.get("skuId") for a in user.get("assignedLicenses") or []}
        for lic in clean_add:
            sku_obj = self.skus[lic["skuId"]]
            enabled = int((sku_obj.get("prepaidUnits") or {}).get("enabled", 0))
            if lic["skuId"] not in seated and int(sku_obj.get("consumedUnits", 0)) >= enabled:
                raise bad_request(
                    f"Subscription for {sku_obj.get('skuPartNumber', lic['skuId'])} "
                    "does not have any available licenses."
                )
            for s in [
                s for s in states if s.get("skuId") == lic["skuId"] and not s.get("assignedByGroup")
            ]:
                states.remove(s)
            states.append(
                {
                    "assignedByGroup": None,
                    "disabledPlans": lic["disabledPlans"],
                    "error": None,
                    "lastUpdatedDateTime": now,
                    "skuId": lic["skuId"],
                    "state": "Active",
                }
            )
        self._process_now({user["id"]})
        self.user_changed([user["id"]])  # direct assignments changed even if states did not
        self.audit.record(
            "Change user license", "UserManagement", who, [audit_target(user, "User")]
        )
        return user

    def reprocess_user(self, uid: str, who: str) -> Obj:
        user = self.user(uid)
        self._process_now({user["id"]})
        self.audit.record(
            "Change user license", "UserManagement", who, [audit_target(user, "User")]
        )
        return user

    def set_account_enabled(self, uid: str, enabled: bool) -> Obj:
        user = self.user(uid)
        user["accountEnabled"] = enabled
        self.user_changed([user["id"]])
        return user

    def set_prepaid_units(self, sku_id: str, units: Obj) -> Obj:
        sku = self.skus.get(sku_id) or next(
            (s for k, s in self.skus.items() if k.lower() == sku_id.lower()), None
        )
        if sku is None:
            raise not_found(sku_id)
        prepaid = sku.setdefault("prepaidUnits", {})
        for key in ("enabled", "warning", "suspended", "lockedOut"):
            if key in units:
                prepaid[key] = int(units[key])
        # Entra does not retry users stuck in CountViolation when seats are added: nothing is
        # rescheduled here; a reprocess (or membership change) is what picks them up.
        return sku

    def set_usage_location(self, uid: str, location: str | None) -> Obj:
        user = self.user(uid)
        user["usageLocation"] = location
        self.user_changed([user["id"]])
        return user

    def _mark_user(self, list_name: str, uid: str, marked: bool) -> None:
        """Add the user to (or remove it from) the tenant config's user id list `list_name`."""
        user = self.user(uid)
        ids = set(self.x.get(list_name) or [])
        if marked:
            ids.add(user["id"])
        else:
            ids.discard(user["id"])
        self.x[list_name] = sorted(ids)

    def set_duplicate_proxy(self, uid: str, duplicate: bool) -> None:
        self._mark_user("duplicateProxyUsers", uid, duplicate)
        self.rules = LicensingRules.from_config(self.x)

    def set_protected(self, uid: str, protected: bool) -> None:
        """Put the user in (or take it out of) a restricted management administrative unit:
        tenant-scoped application permissions do not apply to its members (Microsoft Learn,
        admin-units-restricted-management, "Programmability"), so app writes are refused."""
        self._mark_user("protectedUsers", uid, protected)

    def writable_user(self, uid: str) -> Obj:
        """The user an app may write, or Graph's 403 for a protected one (the same answer as
        for a missing permission: only the caller's roles tell the two apart)."""
        user = self.user(uid)
        if user["id"] in (self.x.get("protectedUsers") or ()):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return user
