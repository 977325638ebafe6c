"""Where this tenant shows each product working: a user at that usage location holds it Active.

Microsoft publishes no table of the locations a product is prohibited in, so the tenant's own
states are the evidence: a product someone holds at a location is not prohibited there. The
findings use it to tell which product of a group failing all-or-none a location prohibits, the
what-if to predict ProhibitedInUsageLocationViolation (`predict_evidence.prohibited_seen`). Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict

from shared.core.model import Tenant, User, normalize_error


def effective_location(user: User, tenant: Tenant) -> str:
    """The usage location Entra checks (upper case): the user's, or for a user without one the
    tenant's country; "" when neither is known."""
    country = tenant.organization.country if tenant.organization else None
    return (user.usage_location or country or "").upper()


def working_locations(tenant: Tenant) -> dict[str, set[str]]:
    """Product -> the usage locations of the users who hold it Active (no error)."""
    working: dict[str, set[str]] = defaultdict(set)
    for user in tenant.users.values():
        location = effective_location(user, tenant)
        for state in user.states:
            if location and state.state == "Active" and normalize_error(state.error) is None:
                working[state.sku_id].add(location)
    return working


class WorkingLocations:
    """`working_locations` of one tenant, worked out on the first question: most evaluations
    have no usage-location error to ask about."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant
        self._working: dict[str, set[str]] | None = None

    def works_at(self, sku_id: str, location: str) -> bool:
        if self._working is None:
            self._working = working_locations(self._tenant)
        return location in self._working.get(sku_id, ())
