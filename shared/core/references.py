"""Resolving what an admin types (an id, an exact display name, a UPN, a part number, plan
names) to the tenant's objects, with one-line errors for unknown or ambiguous names.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from shared.core.model import Group, ServicePlan, Sku, Tenant, User


class BadReference(ValueError):
    """A name or id that matches nothing, or more than one object; the message says which."""


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_T = TypeVar("_T", bound=_Identified)


@dataclass(frozen=True, slots=True)
class _Reference(Generic[_T]):
    """A kind of thing a change names on the command line: by its id or by one of its `names`;
    `describe` tells apart the matches of an ambiguous name."""

    kind: str
    names: Callable[[_T], Iterable[str]]
    describe: Callable[[_T], str]

    def find(self, text: str, items: Iterable[_T], scope: str = "the snapshot") -> _T:
        """By id (case-insensitive), then an exact name, then a case-insensitive name; one
        match only."""
        items = list(items)
        wanted = text.strip()
        matchers: list[Callable[[_T], bool]] = [
            lambda x: x.id.lower() == wanted.lower(),
            lambda x: wanted in self.names(x),
            lambda x: wanted.lower() in {k.lower() for k in self.names(x)},
        ]
        for match in matchers:
            found = [x for x in items if match(x)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                listed = "; ".join(self.describe(x) for x in found)
                raise BadReference(
                    f"{self.kind} '{text}' is ambiguous: {len(found)} match ({listed}); give the id"
                )
        raise BadReference(f"{self.kind} '{text}' is not in {scope}")


_GROUP: _Reference[Group] = _Reference("group", lambda g: (g.name,), lambda g: f"'{g.name}' {g.id}")
_USER: _Reference[User] = _Reference(
    "user",
    lambda u: (u.user_principal_name, u.display_name),
    lambda u: f"{u.display_name} <{u.user_principal_name}> {u.id}",
)
_SKU: _Reference[Sku] = _Reference(
    "SKU", lambda s: (s.part_number,), lambda s: f"{s.part_number} {s.id}"
)
_PLAN: _Reference[ServicePlan] = _Reference(
    "service plan", lambda p: (p.name,), lambda p: f"{p.name} {p.id}"
)


def find_group(tenant: Tenant, text: str) -> Group:
    """A group by id or exact display name."""
    return _GROUP.find(text, tenant.groups.values())


def find_user(tenant: Tenant, text: str) -> User:
    """A user by id, userPrincipalName or exact display name."""
    return _USER.find(text, tenant.users.values())


def find_sku(tenant: Tenant, text: str) -> Sku:
    """A subscribed SKU by skuId or skuPartNumber."""
    return _SKU.find(text, tenant.skus.values())


def find_plans(sku: Sku, text: str) -> frozenset[str]:
    """Plan ids from a comma-separated list of servicePlanNames (or ids); '' means none."""
    plan_ids = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            plan = _PLAN.find(part, sku.plans, scope=sku.part_number)
        except BadReference as exc:
            known = ", ".join(p.name for p in sku.plans)
            raise BadReference(f"{exc} (its plans: {known})") from None
        plan_ids.add(plan.id)
    return frozenset(plan_ids)
