"""The fast evaluate path renders exactly what the plain one does, on every tenant shape.

`write_evaluation_json` streams users a chunk at a time and shares rendered license lists;
`evaluation_json` is the plain document. They must give the same bytes, on the demo snapshot
(also pinned to a golden file written by the code before the speed-ups: regenerate it with
`license-guard evaluate --snapshot shared/data/demo-snapshot.json --format json` when a message
changes on purpose) and on each benchmark shape of a small synthetic tenant.

The readable table streams with shared license and finding lines too; it is pinned to golden
files written by the table renderer from before the speed-ups (commit c4c1524), with and
without `--all`: regenerate them with `--format table [--all]` when the wording changes on purpose.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import orjson
import pytest

from bench.shapes import SHAPES
from graphsim.synthetic import generate_tenant
from shared.adapters.snapshot import load_snapshot, parse_snapshot
from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.core.evaluate import evaluate
from shared.render.evaluation import evaluation_json, write_evaluation_json
from shared.render.evaluation_table import write_table
from tests.demo_tenant import DEMO

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data")
GOLDEN = DATA / "demo-evaluation.json"


def _streamed(document: dict[str, object], chunk: int = 7) -> bytes:
    tenant = parse_snapshot(document).tenant
    out = io.BytesIO()
    write_evaluation_json(evaluate(tenant), tenant, out, chunk=chunk)
    return out.getvalue()


def _plain(document: dict[str, object]) -> bytes:
    tenant = parse_snapshot(document).tenant
    return orjson.dumps(evaluation_json(evaluate(tenant), tenant)) + b"\n"


def test_demo_evaluation_matches_the_golden_file() -> None:
    tenant = load_snapshot(DEMO).tenant
    out = io.BytesIO()
    # as the command evaluates it: with the conflicts table (it names the plans that clash)
    write_evaluation_json(evaluate(tenant, conflicts=plan_conflicts()), tenant, out)
    assert out.getvalue() == GOLDEN.read_bytes()


@pytest.mark.parametrize(
    ("show_healthy", "golden"),
    [(False, "demo-evaluation-table.txt"), (True, "demo-evaluation-table-all.txt")],
)
def test_demo_table_matches_the_golden_file(show_healthy: bool, golden: str) -> None:
    tenant = load_snapshot(DEMO).tenant
    names = catalog()
    out = io.StringIO()
    evaluation = evaluate(tenant, *names.names_for(tenant), plan_conflicts())
    write_table(evaluation, tenant, names, out, show_healthy)
    assert out.getvalue() == (DATA / golden).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_tenant() -> bytes:
    tenant = generate_tenant(users=400, groups=12, skus=8, seed=5, unlicensed_groups=3)
    tenant.pop("x-graphsim", None)
    return orjson.dumps(tenant)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_streamed_json_equals_the_plain_document_on_each_shape(
    small_tenant: bytes, shape: str
) -> None:
    document = orjson.loads(small_tenant)
    SHAPES[shape](document, random.Random(5))
    streamed = _streamed(orjson.loads(orjson.dumps(document)))
    assert streamed == _plain(document)
    users = orjson.loads(streamed)["users"]
    codes = {f["code"] for u in users for f in u["findings"]}
    expected = {
        "pending-heavy": "PendingGroupAssignment",
        "direct-heavy": "RedundantDirectAssignment",
        "error-heavy": "CountViolation",
    }.get(shape)
    assert expected is None or expected in codes


def test_a_state_repeated_within_one_user_stays_a_distinct_object() -> None:
    sku = "c7df2760-2c81-4ef7-b578-5b5392b571df"
    state = {"skuId": sku, "assignedByGroup": None, "state": "Active", "error": None}
    document = {
        "subscribedSkus": [{"skuId": sku, "skuPartNumber": "E5", "servicePlans": []}],
        "groups": [],
        "users": [
            {"id": "u1", "licenseAssignmentStates": [state, dict(state)]},
            {"id": "u2", "licenseAssignmentStates": [dict(state)]},
        ],
    }
    users = parse_snapshot(document).tenant.users
    first, second = users["u1"].states
    assert first == second
    assert first is not second
    assert users["u2"].states[0] in (first, second)
