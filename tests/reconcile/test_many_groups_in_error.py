"""A tenant with hundreds of licensed groups in error: the nightly checkpoint still fits.

The checkpoint's counters count users in error per group (`group_errors`, the summary's top
groups); as JSON that is about 43 characters a group, so past about 760 groups with errors it
outgrew one table string (32,768 characters; the in-memory table enforces it as Azure Tables
does) and every page's checkpoint failed: the night's run never finished, nor any run after.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.tables import MAX_STRING_CHARS, SERVICESTATE
from shared.service.reconcile.run_state import USERS, Counters, Run, load_run
from shared.service.stores import ServiceState
from tests.reconcile.conftest import Nightly
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio

EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"
"""The demo tenant's EMS E3 SKU."""
GROUPS = 800


def _id(kind: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"many-groups-{kind}-{n}"))


def many_groups_in_error(groups: int) -> dict[str, Any]:
    """The demo tenant and `groups` licensing groups of EMS, each with one member whose
    assignment failed for want of a seat."""
    snapshot = demo_snapshot()
    for n in range(groups):
        group_id, user_id = _id("group", n), _id("user", n)
        snapshot["groups"].append(
            {
                "id": group_id,
                "displayName": f"Licensing_EMS_Site_{n:04d}",
                "mailEnabled": False,
                "securityEnabled": True,
                "groupTypes": [],
                "assignedLicenses": [{"skuId": EMS, "disabledPlans": []}],
                "licenseProcessingState": {"state": "ProcessingComplete"},
                "members": [{"@odata.type": "#microsoft.graph.user", "id": user_id}],
            }
        )
        snapshot["users"].append(
            {
                "id": user_id,
                "userPrincipalName": f"site{n:04d}@contoso.com",
                "displayName": f"Site {n:04d} User",
                "accountEnabled": True,
                "usageLocation": "US",
                "assignedLicenses": [],
                "licenseAssignmentStates": [
                    {
                        "skuId": EMS,
                        "assignedByGroup": group_id,
                        "disabledPlans": [],
                        "state": "Error",
                        "error": "CountViolation",
                        "lastUpdatedDateTime": "2026-11-20T08:00:00Z",
                    }
                ],
            }
        )
    return snapshot


async def test_a_night_over_800_groups_in_error_finishes_and_counts_each_group() -> None:
    nightly = Nightly(build_world(many_groups_in_error(GROUPS)))

    result = await nightly.run()

    assert result.status == "done"
    assert result.summary is not None
    counts = {group_id: 1 for n in range(GROUPS) for group_id in [_id("group", n)]}
    run = load_run(ServiceState(nightly.world.svc.tables.servicestate))
    assert run is not None
    assert counts.items() <= run.counters.group_errors.items()


def test_a_checkpoint_counting_errors_in_thousands_of_groups_reads_back_whole() -> None:
    errors = Counter({_id("group", n): n + 1 for n in range(5_000)})
    counters = Counters(pages=7, users=6_993, group_errors=errors)
    assert len(counters.to_json()) > MAX_STRING_CHARS  # what one field cannot hold
    state = ServiceState(InMemoryTable(SERVICESTATE))
    run = Run("2026-12-03-run", "2026-12-03", datetime(2026, 12, 3, 2, tzinfo=UTC), USERS,
              "https://graph.microsoft.com/v1.0/users?$skiptoken=x", False, counters)  # fmt: skip

    state.put("reconcile-run", run.fields())

    loaded = load_run(state)
    assert loaded is not None
    assert loaded.counters.group_errors == errors
    assert (loaded.counters.pages, loaded.counters.users) == (7, 6_993)
