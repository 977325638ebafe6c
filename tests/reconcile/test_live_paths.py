"""`license-guard report paths --format json` (a live scan): the evaluation JSON with every
user's paths and findings, and the licensed groups with their own findings."""

from __future__ import annotations

import io

import orjson
import pytest

from shared.cli.live import write_paths
from shared.core import findings as codes
from tests.demo_tenant import E3_BASE
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio


async def test_the_live_paths_json_carries_the_groups_own_findings(nightly: Nightly) -> None:
    # as `evaluate --format json` and the nightly evaluation.json: Sales_Team nested in the E3
    # Base group licenses nobody (the group said "findings": [])
    out = io.BytesIO()

    await write_paths(nightly.directory, out, "json")

    base = next(g for g in orjson.loads(out.getvalue())["groups"] if g["id"] == E3_BASE)
    [nested] = base["findings"]
    assert nested["code"] == codes.NESTED_GROUP_MEMBER
    assert "'Sales_Team' get nothing" in nested["message"]
