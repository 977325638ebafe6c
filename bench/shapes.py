"""Tenant shapes for the evaluate benchmark, derived from graphsim's generated tenant.

A real tenant is not always "processed" (every membership has its licenseAssignmentState):
a new licensing group leaves hundreds of thousands of memberships pending, a seat shortage
puts users in error, a migration leaves direct assignments everywhere. Each shape costs the
evaluation differently (pending and error findings carry long messages), so each is measured.
The transforms are deterministic (a seeded RNG) and mutate the generated JSON in place.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from shared.core.findings import REPORTED_CODES

Json = dict[str, Any]

# Codes Graph reports on licenseAssignmentState.error; rotated so every remedy is rendered.
ERROR_CODES = tuple(sorted(REPORTED_CODES))


def processed(tenant: Json, rng: random.Random) -> None:
    """As generated: every membership has its state (a few % of users in each error)."""


def pending_heavy(tenant: Json, rng: random.Random) -> None:
    """Every licensed membership without its state: no group has been processed yet.

    Group-assigned states go, and with them the seats they brought (assignedLicenses keeps
    only the SKUs of direct assignments); every licensed membership becomes a pending finding.
    """
    for user in tenant["users"]:
        states = user.get("licenseAssignmentStates") or []
        direct = [s for s in states if not s.get("assignedByGroup")]
        user["licenseAssignmentStates"] = direct
        held = {s["skuId"] for s in direct}
        user["assignedLicenses"] = [
            lic for lic in user.get("assignedLicenses") or [] if lic.get("skuId") in held
        ]
    for group in tenant["groups"]:
        if group.get("assignedLicenses"):
            group["licenseProcessingState"] = {"state": "QueuedForProcessing"}


def error_heavy(tenant: Json, rng: random.Random) -> None:
    """10 % of users with a group-assigned license in an assignment error (codes rotated)."""
    users = [u for u in tenant["users"] if _group_states(u)]
    count = round(len(tenant["users"]) * 0.10)
    for n, user in enumerate(rng.sample(users, min(count, len(users)))):
        state = rng.choice(_group_states(user))
        state["state"] = "Error"
        state["error"] = ERROR_CODES[n % len(ERROR_CODES)]
        failed = state["skuId"]
        user["assignedLicenses"] = [
            lic for lic in user.get("assignedLicenses") or [] if lic.get("skuId") != failed
        ]


def direct_heavy(tenant: Json, rng: random.Random) -> None:
    """Half the users with a direct assignment (most of them also covered by a group)."""
    skus = [s["skuId"] for s in tenant["subscribedSkus"]]
    stamp = "2024-01-15T09:30:00Z"
    for user in rng.sample(tenant["users"], len(tenant["users"]) // 2):
        states = user.setdefault("licenseAssignmentStates", [])
        if any(not s.get("assignedByGroup") for s in states):
            continue
        by_group = _group_states(user)
        sku = rng.choice(by_group)["skuId"] if by_group else rng.choice(skus)
        states.append(
            {
                "assignedByGroup": None,
                "disabledPlans": [],
                "error": None,
                "lastUpdatedDateTime": stamp,
                "skuId": sku,
                "state": "Active",
            }
        )
        licenses = user.setdefault("assignedLicenses", [])
        if all(lic.get("skuId") != sku for lic in licenses):
            licenses.append({"disabledPlans": [], "skuId": sku})


def _group_states(user: Json) -> list[Json]:
    return [s for s in user.get("licenseAssignmentStates") or [] if s.get("assignedByGroup")]


SHAPES: dict[str, Callable[[Json, random.Random], None]] = {
    "processed": processed,
    "pending-heavy": pending_heavy,
    "error-heavy": error_heavy,
    "direct-heavy": direct_heavy,
}
