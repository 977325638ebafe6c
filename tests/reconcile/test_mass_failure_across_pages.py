"""A mass failure spread over the night's pages is one group alert, not a reprocess per user.

More than 25 users failing alike in one group (group + SKU + code) have one cause and one fix:
the policy alerts on the group instead of reprocessing each user. The nightly scan decides
page by page (999 users), and a group's members are spread over the tenant's pages: in a
100k-user tenant a failing group of up to about 2,500 members has 25 or fewer on any page, so
every one of them was reprocessed, spending the daily cap (1,000) for days on one cause.
The run now counts each group's failing users over its pages.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.ports.messages import ReprocessUser
from shared.ports.queues import REPROCESS_USER
from tests.reconcile.conftest import PAGE, Nightly, SmallPages
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
"""The demo tenant's Office 365 E3 (seats are not what a pending assignment waits for)."""
STUCK = str(uuid.uuid5(uuid.NAMESPACE_OID, "mass-failure-stuck-group"))
MEMBERS = [str(uuid.uuid5(uuid.NAMESPACE_OID, f"mass-failure-{n}")) for n in range(12 * PAGE)]
THRESHOLD = 25
"""`TenantFacts.group_threshold`."""


def stuck_group() -> dict[str, Any]:
    """The demo tenant and a licensing group Entra says it processed, whose members all lack
    the group's license (PendingGroupAssignment: a reprocess is the policy's answer)."""
    snapshot = demo_snapshot()
    snapshot["groups"].append(
        {
            "id": STUCK,
            "displayName": "Licensing_E3_Stuck",
            "mailEnabled": False,
            "securityEnabled": True,
            "groupTypes": [],
            "assignedLicenses": [{"skuId": E3, "disabledPlans": []}],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [{"@odata.type": "#microsoft.graph.user", "id": m} for m in MEMBERS],
        }
    )
    snapshot["users"].extend(
        {
            "id": member,
            "userPrincipalName": f"stuck{n:03d}@contoso.com",
            "displayName": f"Stuck {n:03d}",
            "accountEnabled": True,
            "usageLocation": "US",
            "assignedLicenses": [],
            "licenseAssignmentStates": [],
        }
        for n, member in enumerate(MEMBERS)
    )
    return snapshot


async def test_a_group_failing_alike_over_many_pages_is_one_group_alert() -> None:
    nightly = Nightly(build_world(stuck_group(), fake=SmallPages, LICENSE_GUARD_MODE="act"))
    await nightly.run()  # the baseline: nothing queued
    nightly.world.clock.advance(24 * 3600)

    result = await nightly.run()

    assert result.status == "done"
    queued = nightly.world.messages_of(REPROCESS_USER, ReprocessUser)
    reprocessed = {m.user_id for m in queued} & set(MEMBERS)
    assert 0 < len(reprocessed) <= THRESHOLD  # the first pages', then one group alert
