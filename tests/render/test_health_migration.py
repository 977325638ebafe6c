"""The health page's migration rows say where a direct-only user's group takes members: a
dynamic group takes none by hand, a synced one's are set in on-premises AD (the migration
report's wording, `render.migration.where_to_add`)."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.snapshot import parse_snapshot
from shared.render.health_sources import report_from_snapshot
from tests.cli.test_migration_report import (
    E1_SKU,
    NOT_YET,
    TAKES_NO_MEMBER_BY_HAND,
    _megan_group_state,
)
from tests.demo_tenant import DEMO


def direct_only_details(kind: dict[str, Any]) -> list[str]:
    """Isaiah's E1 is held only directly, and 'E1 users' assigns exactly that."""
    document = json.loads(DEMO.read_text())
    document["groups"].append(
        {
            "id": "0e1e1e1e-0000-4000-8000-000000000003",
            "displayName": "E1 users",
            "assignedLicenses": [{"skuId": E1_SKU, "disabledPlans": []}],
            "members": [],
            **kind,
        }
    )
    tenant = parse_snapshot(document).tenant
    report = report_from_snapshot(tenant, source="demo", generated_at="2026-12-02T06:00:00Z")
    assert report.migration is not None
    return [r.detail for r in report.migration.rows if r.kind == "direct-only"]


@TAKES_NO_MEMBER_BY_HAND
def test_a_group_that_takes_no_member_by_hand_says_where_its_members_come_from(
    kind: dict[str, Any], where: str
) -> None:
    (detail,) = direct_only_details(kind)

    assert detail.startswith(f"move to E1 users ({where}")


def test_an_assigned_cloud_group_is_a_plain_move() -> None:
    assert direct_only_details({}) == ["move to E1 users"]


@NOT_YET
def test_a_not_yet_row_says_whether_to_wait_for_the_group_or_fix_it(
    change: Any, reason: str
) -> None:
    document = json.loads(DEMO.read_text())
    _megan_group_state(document, change)
    tenant = parse_snapshot(document).tenant

    report = report_from_snapshot(tenant, source="demo", generated_at="2026-12-02T06:00:00Z")

    assert report.migration is not None
    [megan] = [r for r in report.migration.rows if r.name == "Megan Bowen"]
    assert (megan.kind, megan.detail) == ("not-yet", f"Licensing_Office365_E3_Base: {reason}")
