"""Readable builders for core tests: tenants described by names, with real-looking GUIDs.

    b = (
        TenantBuilder()
        .sku("E3", plans=["EXCHANGE", "TEAMS1"], seats=10)
        .group("Base", licenses={"E3": ["TEAMS1"]})
        .member("Base", "ann")
        .user("ann", location="DE")
        .state("ann", "E3", via="Base")
    )
    tenant = b.build()
    b.id("ann"), b.plan_id("E3", "TEAMS1")

Ids are uuid5 GUIDs derived from the names, so they are stable from run to run; a plan name maps
to the same id in every SKU, as Microsoft's plan ids do. Users and groups may be referenced
before they are declared: everything is resolved in `build()`. Graph's side (the
licenseAssignmentStates) is only what the test says, unless `processed()` is called, which
adds an Active state for every membership path the test did not describe. `finding` builds
one finding, for tests of what is done with findings.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shared.core import model
from shared.core.findings import ERROR, Finding
from tools import make_demo_snapshot as demo_snapshot_tool

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://license-guard.test/")


def guid(kind: str, name: str) -> str:
    """A deterministic lower-case GUID for a named test object."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


@dataclass
class _SkuSpec:
    id: str
    plans: dict[str, str]  # plan name -> plan id, in SKU order
    prepaid: model.PrepaidUnits
    consumed: int
    capability_status: str


@dataclass
class _GroupSpec:
    id: str
    licenses: dict[str, tuple[str, ...]]  # SKU name -> disabled plan names
    synced: bool = False
    rule: str | None = None
    processing_state: str | None = None
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


@dataclass
class _UserSpec:
    id: str
    location: str | None = "DE"
    enabled: bool = True
    synced: bool = False
    display_name: str | None = None
    states: list[_StateSpec] = field(default_factory=list)
    assigned: list[tuple[str, tuple[str, ...]]] | None = None


@dataclass
class _StateSpec:
    sku: str
    via: str | None  # group name, None = direct
    disabled: tuple[str, ...] | None  # None = the group's disabled plans
    state: str
    error: str | None
    updated: str | None


class TenantBuilder:
    """Builds a `Tenant` from names. Every method returns the builder, for chaining."""

    def __init__(self) -> None:
        self._skus: dict[str, _SkuSpec] = {}
        self._groups: dict[str, _GroupSpec] = {}
        self._users: dict[str, _UserSpec] = {}
        self._organization: model.Organization | None = None
        self._processed = False

    # ------------------------------------------------------------------ declarations

    def organization(self, name: str = "Contoso", country: str | None = "DE") -> TenantBuilder:
        self._organization = model.Organization(guid("org", name), name, country=country)
        return self

    def sku(
        self,
        name: str,
        plans: Sequence[str] | Mapping[str, str] | int = 3,
        *,
        seats: int = 10,
        consumed: int = 0,
        warning: int = 0,
        suspended: int = 0,
        locked_out: int = 0,
        sku_id: str | None = None,
        capability_status: str = "Enabled",
    ) -> TenantBuilder:
        """A subscribed SKU. `plans`: a count (plans NAME_P1..), names, or names -> real ids."""
        if isinstance(plans, int):
            plan_ids = {f"{name}_P{i}": guid("plan", f"{name}_P{i}") for i in range(1, plans + 1)}
        elif isinstance(plans, Mapping):
            plan_ids = dict(plans)
        else:
            plan_ids = {p: guid("plan", p) for p in plans}
        self._skus[name] = _SkuSpec(
            id=sku_id or guid("sku", name),
            plans=plan_ids,
            prepaid=model.PrepaidUnits(seats, warning, suspended, locked_out),
            consumed=consumed,
            capability_status=capability_status,
        )
        return self

    def group(
        self,
        name: str,
        licenses: Mapping[str, Iterable[str]] | Iterable[str] = (),
        *,
        synced: bool = False,
        rule: str | None = None,
        processing_state: str | None = None,
    ) -> TenantBuilder:
        """A group; `licenses` maps SKU names to disabled plan names (a list: none disabled)."""
        spec = self._group(name)
        if isinstance(licenses, Mapping):
            spec.licenses = {sku: tuple(disabled) for sku, disabled in licenses.items()}
        else:
            spec.licenses = dict.fromkeys(licenses, ())
        spec.synced, spec.rule, spec.processing_state = synced, rule, processing_state
        return self

    def member(self, group: str, *users: str) -> TenantBuilder:
        """Direct user members of a group."""
        return self._add_members(self._group(group).users, users, self._user)

    def nested(self, group: str, *members: str) -> TenantBuilder:
        """Groups that are members of a group."""
        return self._add_members(self._group(group).groups, members, self._group)

    def user(
        self,
        name: str,
        *,
        location: str | None = "DE",
        enabled: bool = True,
        synced: bool = False,
        display_name: str | None = None,
    ) -> TenantBuilder:
        spec = self._user(name)
        spec.location, spec.enabled, spec.synced = location, enabled, synced
        spec.display_name = display_name
        return self

    def direct(
        self,
        user: str,
        sku: str,
        disabled: Iterable[str] = (),
        *,
        state: str = "Active",
        error: str | None = None,
        updated: str | None = None,
    ) -> TenantBuilder:
        """A direct assignment: a licenseAssignmentState with assignedByGroup null."""
        self._user(user).states.append(
            _StateSpec(sku, None, tuple(disabled), state, error, updated)
        )
        return self

    def state(
        self,
        user: str,
        sku: str,
        *,
        via: str,
        state: str = "Active",
        error: str | None = None,
        disabled: Iterable[str] | None = None,
        updated: str | None = None,
    ) -> TenantBuilder:
        """What Graph reports for one group path (disabled plans default to the group's)."""
        self._group(via)
        self._user(user).states.append(
            _StateSpec(
                sku, via, None if disabled is None else tuple(disabled), state, error, updated
            )
        )
        return self

    def assigned(self, user: str, sku: str, disabled: Iterable[str] = ()) -> TenantBuilder:
        """Set user.assignedLicenses explicitly (by default derived from the active states)."""
        spec = self._user(user)
        spec.assigned = [*(spec.assigned or []), (sku, tuple(disabled))]
        return self

    def processed(self) -> TenantBuilder:
        """Graph has processed every membership: undescribed group paths get an Active state."""
        self._processed = True
        return self

    # ------------------------------------------------------------------ look-ups

    def id(self, name: str) -> str:
        """The id of a user, group or SKU, looked up in that order."""
        for specs in (self._users, self._groups, self._skus):
            if name in specs:
                return specs[name].id
        raise KeyError(name)

    def plan_id(self, sku: str, plan: str) -> str:
        return self._skus[sku].plans[plan]

    def plan_ids(self, sku: str, plans: Iterable[str]) -> frozenset[str]:
        return frozenset(self.plan_id(sku, p) for p in plans)

    def plan_names(self, sku: str) -> list[str]:
        return list(self._skus[sku].plans)

    # ------------------------------------------------------------------ build

    def build(self) -> model.Tenant:
        skus = {spec.id: self._build_sku(name, spec) for name, spec in self._skus.items()}
        groups = {spec.id: self._build_group(name, spec) for name, spec in self._groups.items()}
        users = {spec.id: self._build_user(name, spec) for name, spec in self._users.items()}
        return model.Tenant(skus=skus, groups=groups, users=users, organization=self._organization)

    def _build_sku(self, name: str, spec: _SkuSpec) -> model.Sku:
        plans = tuple(model.ServicePlan(pid, pname) for pname, pid in spec.plans.items())
        return model.Sku(spec.id, name, plans, spec.prepaid, spec.consumed, spec.capability_status)

    def _build_group(self, name: str, spec: _GroupSpec) -> model.Group:
        return model.Group(
            id=spec.id,
            name=name,
            licenses=tuple(
                model.LicenseAssignment(self._sku_id(sku), self._plans(sku, disabled))
                for sku, disabled in spec.licenses.items()
            ),
            member_user_ids=tuple(self._users[u].id for u in spec.users),
            member_group_ids=tuple(self._groups[g].id for g in spec.groups),
            membership_rule=spec.rule,
            processing_state=spec.processing_state,
            synced_from_on_premises=spec.synced,
        )

    def _build_user(self, name: str, spec: _UserSpec) -> model.User:
        state_specs = list(spec.states)
        if self._processed:
            described = {(s.sku, s.via) for s in state_specs}
            for group_name, group in self._groups.items():
                if name in group.users:
                    state_specs += [
                        _StateSpec(sku, group_name, None, "Active", None, None)
                        for sku in group.licenses
                        if (sku, group_name) not in described
                    ]
        states = tuple(self._build_state(s) for s in state_specs)
        if spec.assigned is not None:
            assigned = tuple(
                model.LicenseAssignment(self._sku_id(sku), self._plans(sku, disabled))
                for sku, disabled in spec.assigned
            )
        else:
            assigned = assigned_from_states(states)
        return model.User(
            id=spec.id,
            user_principal_name=f"{name}@contoso.test",
            display_name=spec.display_name or name.capitalize(),
            usage_location=spec.location,
            account_enabled=spec.enabled,
            states=states,
            assigned_licenses=assigned,
            synced_from_on_premises=spec.synced,
        )

    def _build_state(self, spec: _StateSpec) -> model.AssignmentState:
        if spec.disabled is not None:
            disabled = self._plans(spec.sku, spec.disabled)
        else:
            group_disabled = self._groups[spec.via or ""].licenses.get(spec.sku, ())
            disabled = self._plans(spec.sku, group_disabled)
        return model.AssignmentState(
            sku_id=self._sku_id(spec.sku),
            assigned_by_group=self._groups[spec.via].id if spec.via else None,
            disabled_plans=disabled,
            state=spec.state,
            error=spec.error,
            last_updated=spec.updated,
        )

    # ------------------------------------------------------------------ helpers

    def _group(self, name: str) -> _GroupSpec:
        return self._groups.setdefault(name, _GroupSpec(guid("group", name), {}))

    def _user(self, name: str) -> _UserSpec:
        return self._users.setdefault(name, _UserSpec(guid("user", name)))

    def _add_members(
        self, members: list[str], names: Iterable[str], declare: Callable[[str], object]
    ) -> TenantBuilder:
        """Adds `names` to a group's `members`, declaring each (members may be named first here)."""
        for name in names:
            declare(name)
            members.append(name)
        return self

    def _sku_id(self, sku: str) -> str:
        spec = self._skus.get(sku)
        return spec.id if spec else guid("sku", sku)

    def _plans(self, sku: str, names: Iterable[str]) -> frozenset[str]:
        spec = self._skus.get(sku)
        known = spec.plans if spec else {}
        return frozenset(known.get(n, guid("plan", n)) for n in names)


def assigned_from_states(
    states: Iterable[model.AssignmentState],
) -> tuple[model.LicenseAssignment, ...]:
    """assignedLicenses as Graph derives them: per SKU, the plans some working path enables."""
    disabled: dict[str, frozenset[str]] = {}
    for state in states:
        if state.state in {"Active", "ActiveWithError"}:
            before = disabled.get(state.sku_id)
            disabled[state.sku_id] = (
                state.disabled_plans if before is None else before & state.disabled_plans
            )
    return tuple(model.LicenseAssignment(sku, plans) for sku, plans in disabled.items())


# --------------------------------------------------------------------------- findings


def finding(
    code: str,
    subject: str = "u1",
    *,
    sku: str | None,
    group: str | None,
    severity: str = ERROR,
    message: str | None = None,
    since: str | None = None,
    evidence: tuple[str, ...] = (),
) -> Finding:
    """A finding as evaluation reports one; unless given, its message and remedy only name the
    subject and the code."""
    return Finding(
        code=code,
        severity=severity,
        subject=subject,
        sku_id=sku,
        group_id=group,
        message=message or f"{subject} does not have the product: {code}.",
        remedy=f"Fix {code} in the Microsoft 365 admin center.",
        since=since,
        evidence=evidence,
    )


# --------------------------------------------------------------------------- the seed scenario

E3 = "ENTERPRISEPACK"
E3_SKU_ID = demo_snapshot_tool.E3
EMS = "EMS"
EMS_SKU_ID = demo_snapshot_tool.EMS
BASE = "Licensing_Office365_E3_Base"
TEAMS = "Licensing_Office365_E3_Teams"
EMS_GROUP = "Licensing_Office365_EMS_E3"

# Real plan ids from Microsoft's "Product names and service plan identifiers for licensing" CSV
# (/work/shared/data/product-service-plans.csv), once: the demo snapshot tool writes the same
# seed scenario. The seed tenant's E3 is restricted to 13 plans.
E3_PLANS: Mapping[str, str] = demo_snapshot_tool.E3_PLANS
EMS_PLANS: Mapping[str, str] = demo_snapshot_tool.EMS_PLANS
BASE_DISABLED = ("YAMMER_ENTERPRISE", "SWAY", "Deskless", "TEAMS1")


def seed_tenant(*, e3_seats: int = 25, ems_seats: int = 25) -> TenantBuilder:
    """The seed scenario: restricted Office 365 E3 and EMS E3 with their three licensing groups.

    Base disables Yammer, Sway, StaffHub (Deskless) and Teams (9 of 13 plans enabled); Teams
    enables only TEAMS1; the EMS group assigns all 7 EMS plans. Add users and memberships.
    """
    return (
        TenantBuilder()
        .organization("Contoso", country="DE")
        .sku(E3, E3_PLANS, seats=e3_seats, sku_id=E3_SKU_ID)
        .sku(EMS, EMS_PLANS, seats=ems_seats, sku_id=EMS_SKU_ID)
        .group(BASE, {E3: BASE_DISABLED})
        .group(TEAMS, {E3: [p for p in E3_PLANS if p != "TEAMS1"]})
        .group(EMS_GROUP, [EMS])
    )
