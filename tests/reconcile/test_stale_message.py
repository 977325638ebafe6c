"""A stale assignment from a group that lost its licenses reads the same from the nightly scan
as from the user pipeline: the scan reads only licensed groups, but the group still exists."""

from __future__ import annotations

import io

import orjson
import pytest

from shared.cli.live import write_paths
from shared.core import findings as codes
from shared.ports.messages import RecomputeUsers
from shared.service.users import recompute_users
from tests.demo_tenant import DIEGO, E3_BASE
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio


def stale_message(nightly: Nightly) -> str:
    [message] = [
        str(e.fields["message"])
        for e in nightly.world.svc.tables.findings.query_all()
        if e.fields.get("code") == codes.STALE_GROUP_ASSIGNMENT
        and str(e.fields.get("key")).startswith(DIEGO)
        and not e.fields.get("resolvedAt")
    ]
    return message


async def test_a_group_that_lost_its_licenses_no_longer_assigns_in_both_pipelines(
    nightly: Nightly,
) -> None:
    nightly.directory.set_group_licenses(E3_BASE, [])  # Diego's state from it stays

    await nightly.run()
    from_the_scan = stale_message(nightly)
    await recompute_users(
        nightly.world.svc, RecomputeUsers(user_ids=(DIEGO,), reason="test", correlation_id="c1")
    )
    from_the_user_pipeline = stale_message(nightly)

    assert "no longer exists" not in from_the_scan
    assert "no longer assigns Office 365 E3" in from_the_scan
    assert from_the_scan == from_the_user_pipeline


async def test_the_live_paths_report_says_the_same(nightly: Nightly) -> None:
    nightly.directory.set_group_licenses(E3_BASE, [])
    out = io.BytesIO()

    await write_paths(nightly.directory, out, "json")

    [diego] = [u for u in orjson.loads(out.getvalue())["users"] if u["id"] == DIEGO]
    [stale] = [f for f in diego["findings"] if f["code"] == codes.STALE_GROUP_ASSIGNMENT]
    assert "no longer assigns Office 365 E3" in stale["message"]
