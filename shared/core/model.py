"""Immutable value types at the core's boundary: a tenant as Microsoft Graph describes it.

The names follow Graph's resources (subscribedSku, group, user, licenseAssignmentState) so that a
reader who knows Graph knows these. Ids are Graph's GUID strings, lower-case. Nothing here reads
the clock or the disk; adapters build these values and hand them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

NO_ERROR_VALUES: Final = frozenset({"", "none"})
"""Graph spells "no error" as null, but PowerShell samples show the string "None" too."""

ERROR_CODE_ALIASES: Final = MappingProxyType({"others": "Other"})
"""Older documentation revisions spell `Other` as `Others`."""


@dataclass(frozen=True, slots=True)
class ServicePlan:
    id: str
    name: str
    applies_to: str | None = field(default=None, compare=False)
    """servicePlanInfo.appliesTo ("User", "Company"), as Graph said it; kept for reports."""
    provisioning_status: str | None = field(default=None, compare=False)
    """servicePlanInfo.provisioningStatus ("Success", "Disabled"...); kept for reports."""


def seat_shortfall(demand: int, seats: int) -> int:
    """How many of `demand` users find no seat among `seats` (Entra gives them CountViolation)."""
    return max(0, demand - seats)


@dataclass(frozen=True, slots=True)
class PrepaidUnits:
    """subscribedSku.prepaidUnits: seats by lifecycle stage of the subscription."""

    enabled: int = 0
    warning: int = 0
    suspended: int = 0
    locked_out: int = 0


@dataclass(frozen=True, slots=True)
class Sku:
    id: str
    part_number: str
    plans: tuple[ServicePlan, ...]
    prepaid: PrepaidUnits = PrepaidUnits()
    consumed: int = 0
    capability_status: str = "Enabled"
    plan_ids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan_ids", frozenset(p.id for p in self.plans))

    def plan_name(self, plan_id: str) -> str:
        for plan in self.plans:
            if plan.id == plan_id:
                return plan.name
        return plan_id


@dataclass(frozen=True, slots=True)
class LicenseAssignment:
    """An assignedLicense: a SKU with some of its service plans switched off."""

    sku_id: str
    disabled_plans: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AssignmentState:
    """One licenseAssignmentState: how one path (direct or one group) fared for one SKU."""

    sku_id: str
    assigned_by_group: str | None
    disabled_plans: frozenset[str] = frozenset()
    state: str = "Active"
    error: str | None = None
    last_updated: str | None = None

    @property
    def is_direct(self) -> bool:
        return self.assigned_by_group is None


def normalize_error(error: str | None) -> str | None:
    """Map Graph's spellings of an assignment error to one code, or None for "no error"."""
    if error is None:
        return None
    text = error.strip()
    if text.lower() in NO_ERROR_VALUES:
        return None
    return ERROR_CODE_ALIASES.get(text.lower(), text)


def state_error(state: AssignmentState) -> str | None:
    """The error of a path: Graph's code, or `Other` for a path in state Error that names
    none (the user lacks its products all the same); None when it has no error."""
    code = normalize_error(state.error)
    if code is None and state.state == "Error":
        return "Other"
    return code


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    licenses: tuple[LicenseAssignment, ...] = ()
    member_user_ids: tuple[str, ...] = ()
    member_group_ids: tuple[str, ...] = ()
    security_enabled: bool = True
    membership_rule: str | None = None
    processing_state: str | None = None
    synced_from_on_premises: bool = False

    @property
    def is_licensed(self) -> bool:
        return bool(self.licenses)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    user_principal_name: str
    display_name: str
    usage_location: str | None = None
    account_enabled: bool = True
    user_type: str = "Member"
    states: tuple[AssignmentState, ...] = ()
    assigned_licenses: tuple[LicenseAssignment, ...] = ()
    synced_from_on_premises: bool = False


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    display_name: str
    country: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_last_sync: str | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    """Everything the evaluation needs, keyed by id for look-ups."""

    skus: Mapping[str, Sku]
    groups: Mapping[str, Group]
    users: Mapping[str, User]
    organization: Organization | None = None
