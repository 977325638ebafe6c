"""Tenant snapshots: one JSON file of Graph's own shapes, parsed into the core's value types.

A snapshot is `{"subscribedSkus": [...], "groups": [... each with "members"], "users": [...],
"organization": [...]}` exactly as `GET` returns those resources (camelCase); unknown fields are
ignored. Bad input raises `SnapshotError` with one line naming the object and the field, so
the CLI can print it without a traceback. Things Graph itself tolerates (a member id with no
user: soft-deleted users keep their memberships for 30 days) are warnings, not errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.lone_surrogates import may_hold_lone_surrogates, without_lone_surrogates
from shared.adapters.snapshot_fields import (
    SnapshotError,
    expect_object,
    required_list,
    required_text,
    whole_number,
)
from shared.core.graph_values import processing_state
from shared.core.model import (
    AssignmentState,
    Group,
    LicenseAssignment,
    Organization,
    PrepaidUnits,
    ServicePlan,
    Sku,
    Tenant,
    User,
)

__all__ = ["GraphTranslator", "LoadedSnapshot", "SnapshotError", "load_snapshot", "parse_snapshot"]

REQUIRED_COLLECTIONS = ("subscribedSkus", "groups", "users")
_USER_TYPE = "#microsoft.graph.user"
_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    tenant: Tenant
    warnings: tuple[str, ...]


def load_snapshot(path: str | Path) -> LoadedSnapshot:
    """Read and parse a snapshot file.

    The stdlib parser is used on purpose: orjson parses a 193 MB snapshot in two thirds of the
    CPU time but peaks at 1252 MiB against 876 MiB (docs/performance.md), over the 1 GB target.
    The encoding is found by the BOM, as for local.settings.json: Windows tools save a snapshot
    the admin edited with one (UTF-8), Windows PowerShell's `snapshot > tenant.json` in UTF-16.
    """
    try:
        text = _text_of(path)  # the bytes not kept, the text only while parsed (peak memory)
        surrogates = may_hold_lone_surrogates(text)
        data = json.loads(text)
        del text
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    data, notes = without_lone_surrogates(data) if surrogates else (data, ())
    loaded = parse_snapshot(data, consume=True, complete=True)
    return LoadedSnapshot(loaded.tenant, notes + loaded.warnings)


def _text_of(path: str | Path) -> str:
    """The file's text, its encoding found by its BOM (UTF-8 without one), as json does."""
    with open(path, "rb") as handle:
        raw = handle.read()
    return raw.decode(json.detect_encoding(raw))


def parse_snapshot(data: Any, *, consume: bool = False, complete: bool = False) -> LoadedSnapshot:
    """Parse a snapshot document; with `consume`, user entries are released as they are parsed.

    `complete`: the document claims to be the whole tenant (a snapshot file), so a licensed
    group must list its members. The service's partial documents (a page of users and the
    groups they are in) leave `members` out.
    """
    if not isinstance(data, dict):
        raise SnapshotError("snapshot: the top level must be a JSON object")
    for key in REQUIRED_COLLECTIONS:
        if key not in data:
            raise SnapshotError(f"snapshot: missing required key '{key}'")
        if not isinstance(data[key], list):
            raise SnapshotError(f"snapshot: '{key}' must be a list")
    parser = _Parser(complete=complete)
    skus = {s.id: s for s in (parser.sku(i, o) for i, o in enumerate(data["subscribedSkus"]))}
    users = {}
    raw_users = data["users"]
    for index, obj in enumerate(raw_users):
        user = parser.user(index, obj, skus)
        users[user.id] = user
        if consume:
            raw_users[index] = None  # release the JSON as we go: lowers peak memory a lot
    raw_groups = data["groups"]
    group_ids = {_id(o) for o in raw_groups if isinstance(o, dict)}
    groups = {
        g.id: g
        for g in (parser.group(i, o, skus, users, group_ids) for i, o in enumerate(raw_groups))
    }
    organization = parser.organization(data.get("organization"))
    return LoadedSnapshot(Tenant(skus, groups, users, organization), tuple(parser.warnings))


class GraphTranslator:
    """Graph objects to the core's values, one object at a time: the service's reads (a page of
    users, the groups they are in) become a `Tenant` without building a snapshot document.
    Bad input raises `SnapshotError` as a snapshot would; repeated values are shared."""

    def __init__(self) -> None:
        self._parser = _Parser()

    def skus(self, objects: Iterable[Any]) -> dict[str, Sku]:
        return {s.id: s for s in (self._parser.sku(i, o) for i, o in enumerate(objects))}

    def users(self, objects: Iterable[Any], skus: Mapping[str, Sku]) -> dict[str, User]:
        users = (self._parser.user(i, o, skus) for i, o in enumerate(objects))
        return {u.id: u for u in users}

    def groups(
        self, objects: Iterable[Any], skus: Mapping[str, Sku], members: Mapping[str, Sequence[str]]
    ) -> dict[str, Group]:
        """The groups, each with `members[group id]` as its user members (users already read)."""
        groups = (
            self._parser.group(
                i, o, skus, {}, set(), members.get((isinstance(o, dict) and _id(o)) or "", ())
            )
            for i, o in enumerate(objects)
        )
        return {g.id: g for g in groups}

    def organization(self, value: Any) -> Organization | None:
        return self._parser.organization(value)


def _id(obj: dict[str, Any]) -> str | None:
    value = obj.get("id")
    return value if isinstance(value, str) else None


class _Parser:
    """Parses one snapshot, interning repeated values and collecting warnings."""

    def __init__(self, *, complete: bool = False) -> None:
        self.complete = complete
        self.warnings: list[str] = []
        self._plan_sets: dict[tuple[str, ...], frozenset[str]] = {(): _EMPTY}
        # Users repeat the same states and assignments (same group, SKU, plans and time):
        # one object each saves most of the parse's allocations and memory.
        self._states: dict[tuple[Any, ...], AssignmentState] = {}
        self._assignments: dict[tuple[str, frozenset[str]], LicenseAssignment] = {}

    def _plans(self, value: Any, where: str) -> frozenset[str]:
        """Disabled-plan lists repeat across thousands of users: validate and build each once."""
        if not value:
            return _EMPTY
        key = tuple(value) if type(value) is list else None
        plans = self._plan_sets.get(key) if key is not None else None
        if plans is None:
            if key is None or not all(isinstance(p, str) for p in key):
                raise SnapshotError(f"{where}: 'disabledPlans' must be a list of service plan ids")
            plans = self._plan_sets[key] = frozenset(key)
        return plans

    def sku(self, index: int, obj: Any) -> Sku:
        where = f"subscribedSkus[{index}]"
        obj = expect_object(obj, where)
        sku_id = required_text(obj, "skuId", where)
        where = f"subscribedSkus[{index}] (skuId {sku_id})"
        plans = []
        for n, plan in enumerate(required_list(obj, "servicePlans", where)):
            plan_where = f"{where}: servicePlans[{n}]"
            plan = expect_object(plan, plan_where)
            plan_id = required_text(plan, "servicePlanId", plan_where)
            info = (plan.get("appliesTo"), plan.get("provisioningStatus"))
            plans.append(ServicePlan(plan_id, str(plan.get("servicePlanName") or plan_id), *info))
        prepaid = obj.get("prepaidUnits") or {}
        if not isinstance(prepaid, dict):
            raise SnapshotError(f"{where}: 'prepaidUnits' must be an object")
        return Sku(
            id=sku_id,
            part_number=str(obj.get("skuPartNumber") or sku_id),
            plans=tuple(plans),
            prepaid=PrepaidUnits(
                enabled=whole_number(prepaid, "enabled", where),
                warning=whole_number(prepaid, "warning", where),
                suspended=whole_number(prepaid, "suspended", where),
                locked_out=whole_number(prepaid, "lockedOut", where),
            ),
            consumed=whole_number(obj, "consumedUnits", where),
            capability_status=str(obj.get("capabilityStatus") or "Enabled"),
        )

    def user(self, index: int, obj: Any, skus: Mapping[str, Sku]) -> User:
        user_id = obj.get("id") if type(obj) is dict else None
        if type(user_id) is not str or not user_id:  # the fast path builds no message
            user_id = required_text(expect_object(obj, f"users[{index}]"), "id", f"users[{index}]")
        raw_states = obj.get("licenseAssignmentStates")
        states = (
            tuple(self._state(user_id, obj, n, raw, skus) for n, raw in enumerate(raw_states))
            if raw_states
            else ()
        )
        if len(states) > 1 and len({id(s) for s in states}) < len(states):
            # a state repeated within one user stays a distinct object (findings tell a
            # user's states apart by identity)
            states = tuple(
                s if states.index(s) == n else AssignmentState(*_fields(s))
                for n, s in enumerate(states)
            )
        raw = obj.get("assignedLicenses")
        assigned = (
            tuple(self._assigned(user_id, obj, n, r) for n, r in enumerate(raw)) if raw else ()
        )
        upn = obj.get("userPrincipalName")
        return User(  # positional (User's field order): cheaper at 100k users
            user_id,
            str(upn or ""),
            str(obj.get("displayName") or upn or user_id),
            obj.get("usageLocation") or None,
            obj.get("accountEnabled") is not False,
            str(obj.get("userType") or "Member"),
            states,
            assigned,
            obj.get("onPremisesSyncEnabled") is True,
        )

    def _state(
        self, user_id: str, user: dict[str, Any], n: int, raw: Any, skus: Mapping[str, Sku]
    ) -> AssignmentState:
        # The fast path checks types without building messages; a failure explains itself.
        sku_id = raw.get("skuId") if type(raw) is dict else None
        if type(sku_id) is not str or not sku_id:
            where = f"{_user_label(user_id, user)}: licenseAssignmentStates[{n}]"
            required_text(expect_object(raw, where), "skuId", where)
            raise AssertionError("unreachable")  # pragma: no cover
        if sku_id not in skus:
            self.warnings.append(
                f"{_user_label(user_id, user)}: licenseAssignmentStates[{n}]: skuId {sku_id} "
                "is not in subscribedSkus"
            )
        disabled = raw.get("disabledPlans")
        key = (
            sku_id,
            raw.get("assignedByGroup") or None,
            self._plans(disabled, _user_label(user_id, user)) if disabled else _EMPTY,
            raw.get("state") or "Active",
            raw.get("error"),
            raw.get("lastUpdatedDateTime"),
        )
        try:
            state = self._states.get(key)
        except TypeError:  # an unhashable value (bad input, kept as given): not shared
            return AssignmentState(*key)
        if state is None:
            state = self._states[key] = AssignmentState(*key)
        return state

    def _assigned(self, user_id: str, user: dict[str, Any], n: int, raw: Any) -> LicenseAssignment:
        sku_id = raw.get("skuId") if type(raw) is dict else None
        if type(sku_id) is not str or not sku_id:
            where = f"{_user_label(user_id, user)}: assignedLicenses[{n}]"
            required_text(expect_object(raw, where), "skuId", where)
        disabled = raw.get("disabledPlans")
        key = (
            str(sku_id),
            self._plans(disabled, _user_label(user_id, user)) if disabled else _EMPTY,
        )
        assignment = self._assignments.get(key)
        if assignment is None:
            assignment = self._assignments[key] = LicenseAssignment(*key)
        return assignment

    def group(
        self,
        index: int,
        obj: Any,
        skus: Mapping[str, Sku],
        users: dict[str, User],
        group_ids: set[str | None],
        member_user_ids: Sequence[str] | None = None,
    ) -> Group:
        """`member_user_ids`, when given, are the group's user members (not `members`)."""
        where = f"groups[{index}]"
        obj = expect_object(obj, where)
        group_id = required_text(obj, "id", where)
        name = str(obj.get("displayName") or group_id)
        where = f"group '{name}' ({group_id})"
        licenses = []
        for n, raw in enumerate(obj.get("assignedLicenses") or ()):
            lic_where = f"{where}: assignedLicenses[{n}]"
            raw = expect_object(raw, lic_where)
            sku_id = required_text(raw, "skuId", lic_where)
            sku = skus.get(sku_id)
            disabled = self._plans(raw.get("disabledPlans"), lic_where)
            # Graph keeps a group's license after the subscription left subscribedSkus, and
            # a disabled plan after Microsoft took it out of the SKU: the core ignores both
            if sku is None:
                self.warnings.append(f"{lic_where}.skuId: {sku_id} is not a SKU in subscribedSkus")
            elif unknown := sorted(disabled - sku.plan_ids):
                self.warnings.append(
                    f"{lic_where}.disabledPlans: {unknown[0]} is not a service plan of "
                    f"{sku.part_number}"
                )
            licenses.append(LicenseAssignment(sku_id, disabled))
        if self.complete and licenses and not isinstance(obj.get("members"), list):
            # Read as "no members", a licensed group would silently license nobody.
            raise SnapshotError(
                f"{where}: missing required list 'members' (a licensed group needs its "
                'members; write "members": [] for an empty group)'
            )
        if member_user_ids is None:
            member_users, member_groups = self._members(obj, where, users, group_ids)
        else:
            member_users, member_groups = tuple(member_user_ids), ()
        return Group(
            id=group_id,
            name=name,
            licenses=tuple(licenses),
            member_user_ids=member_users,
            member_group_ids=member_groups,
            security_enabled=obj.get("securityEnabled") is not False,
            membership_rule=obj.get("membershipRule") or None,
            processing_state=processing_state(obj.get("licenseProcessingState")),
            synced_from_on_premises=obj.get("onPremisesSyncEnabled") is True,
        )

    def _members(
        self, obj: dict[str, Any], where: str, users: dict[str, User], group_ids: set[str | None]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        members = obj.get("members") or ()
        fast: list[Any] = [
            m.get("id") for m in members if type(m) is dict and m.get("@odata.type") == _USER_TYPE
        ]
        try:  # the common case, checked in C: every member a user of the snapshot
            if len(fast) == len(members) and users.keys() >= set(fast):
                return tuple(fast), ()
        except TypeError:  # an unhashable id: the loop below explains it
            pass
        member_users: list[str] = []
        member_groups: list[str] = []
        for n, member in enumerate(members):
            member_id = member.get("id") if type(member) is dict else None
            if type(member_id) is not str or not member_id:
                member = expect_object(member, f"{where}: members[{n}]")
                member_id = required_text(member, "id", f"{where}: members[{n}]")
            kind = member.get("@odata.type")
            if kind == _USER_TYPE and member_id in users:
                member_users.append(member_id)
                continue
            kind = str(kind or "").lower()
            if kind.endswith(".group") or (not kind and member_id in group_ids):
                member_groups.append(member_id)
            elif member_id in users:
                member_users.append(member_id)
            elif kind.endswith(".user") or not kind:
                self.warnings.append(
                    f"{where}: member {member_id} is not a user in the snapshot (a soft-deleted "
                    "user keeps its memberships for 30 days); ignored"
                )
        return tuple(member_users), tuple(member_groups)

    def organization(self, value: Any) -> Organization | None:
        if not value:
            return None
        if isinstance(value, list):
            value = value[0]
        org = expect_object(value, "organization[0]")
        return Organization(
            id=str(org.get("id") or ""),
            display_name=str(org.get("displayName") or ""),
            country=org.get("countryLetterCode") or None,
            on_premises_sync_enabled=org.get("onPremisesSyncEnabled"),
            on_premises_last_sync=org.get("onPremisesLastSyncDateTime"),
        )


def _fields(state: AssignmentState) -> tuple[Any, ...]:
    return (
        state.sku_id,
        state.assigned_by_group,
        state.disabled_plans,
        state.state,
        state.error,
        state.last_updated,
    )


def _user_label(user_id: str, user: dict[str, Any]) -> str:
    return f"user {user.get('userPrincipalName') or user_id} ({user_id})"
