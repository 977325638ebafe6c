"""How directory objects look on the wire: the default and `$select` projections of users and
groups, and group members typed by `@odata.type` (users, nested groups)."""

from __future__ import annotations

from typing import Any

from .memberships import GROUP_TYPE, USER_TYPE
from .odata import project
from .state import SimState

Obj = dict[str, Any]

USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
"""A user's properties without `$select` (`project` adds `id`): users, members, /users/delta."""
REPROCESS_EXTRA = ("accountEnabled", "assignedLicenses", "assignedPlans")
"""Beyond the default properties, reprocessLicenseAssignment's user carries these (the doc's
example response)."""
GROUP_SELECT_ONLY = {"assignedLicenses", "licenseProcessingState"}
GROUP_HIDDEN = {"members", "hasMembersWithLicenseErrors"}


def group_view(group: Obj, select: tuple[str, ...] | None) -> Obj:
    if select is None:
        return {
            k: v
            for k, v in group.items()
            if k not in GROUP_HIDDEN and k not in GROUP_SELECT_ONLY and not k.startswith("_")
        }
    out = project(group, tuple(s for s in select if s not in GROUP_HIDDEN), None)
    return out


def user_view(user: Obj, select: tuple[str, ...] | None) -> Obj:
    return project(user, select, USER_DEFAULT)


def member_view(state: SimState, member: Obj, select: tuple[str, ...] | None) -> Obj:
    """A member as `/members` lists it: a user or a nested group, else just its id."""
    mid = member["id"]
    if member.get("@odata.type") == USER_TYPE and mid in state.users:
        return {"@odata.type": USER_TYPE, **user_view(state.users[mid], select)}
    group = state.groups.get(mid)
    if group is not None:
        return {"@odata.type": GROUP_TYPE, **group_view(group, select)}
    return {"@odata.type": member.get("@odata.type", USER_TYPE), "id": mid}


def role_or_unit_view(obj: Obj, select: tuple[str, ...] | None) -> Obj:
    """A directory role or administrative unit as `memberOf` lists it: its type, and the
    selected properties it has (a group's, such as `securityEnabled`, it has not)."""
    shown = {k: v for k, v in obj.items() if k != "members" and not k.startswith("_")}
    if select is None:
        return shown
    return {
        "@odata.type": shown["@odata.type"],
        "id": shown["id"],
        **{k: shown[k] for k in select if k in shown},
    }
