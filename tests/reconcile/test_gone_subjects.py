"""The nightly run is the safety net: a licensed group that lost its licenses (or was deleted)
while its change notification was lost, or a product gone from subscribedSkus, has its own
findings resolved by the next night, as the event path would have resolved a group's."""

from __future__ import annotations

import pytest

from tests.demo_tenant import E3_BASE
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio

DAY = 24 * 3600
STANDARDPACK = "18181a46-0d4e-45cd-891e-60aabd171b4e"


def open_keys(nightly: Nightly) -> list[str]:
    return [
        str(e.fields["key"])
        for e in nightly.world.svc.tables.findings.query_all()
        if not e.fields.get("resolvedAt")
    ]


def open_group_findings(nightly: Nightly) -> list[str]:
    return [k for k in open_keys(nightly) if k.startswith(f"group:{E3_BASE}|")]


@pytest.mark.parametrize("change", ["licenses-removed", "deleted"])
async def test_the_findings_of_a_group_no_longer_licensed_are_resolved_by_the_next_night(
    nightly: Nightly, change: str
) -> None:
    await nightly.run()
    assert open_group_findings(nightly)  # the demo nests Sales_Team in E3 Base
    if change == "deleted":
        nightly.directory.delete_group(E3_BASE)
    else:
        nightly.directory.set_group_licenses(E3_BASE, [])
    nightly.world.clock.advance(DAY)

    result = await nightly.run()

    assert result.status == "done"
    assert open_group_findings(nightly) == []
    assert result.summary is not None
    assert result.summary.resolved_findings == result.resolved_findings


async def test_the_findings_of_a_product_gone_from_subscribed_skus_are_resolved(
    nightly: Nightly,
) -> None:
    await nightly.run()
    lapsing = f"sku:{STANDARDPACK}|"
    assert any(k.startswith(lapsing) for k in open_keys(nightly))  # seats in warning
    nightly.directory.skus = [s for s in nightly.directory.skus if s["skuId"] != STANDARDPACK]
    nightly.world.clock.advance(DAY)

    result = await nightly.run()

    assert result.status == "done"
    assert not any(k.startswith(lapsing) for k in open_keys(nightly))
