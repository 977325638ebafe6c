"""The nightly history records behind the report page's trends: a record whose numbers are not
numbers is skipped like any other file that is not a nightly summary, never a traceback (the
command line) or a nightly health page that fails to render (the reports container)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.cli.files import load_tenant
from shared.cli.main import main
from shared.fakes.blobs import InMemoryBlobStore
from shared.render.health_sources import report_from_snapshot
from shared.render.history import history_name, load_history_blobs, trends
from tests.demo_tenant import DEMO

GOOD = {
    "date": "2026-11-29",
    "findings_by_code": {"CountViolation": 4},
    "seat_forecast": [{"sku_id": "e3", "demand": 10, "prepaid_enabled": 8, "consumed": 8}],
    "health": {"error": 3, "stale": 0, "pending": 1},
    "drift": [{"kind": "group", "subject": "G", "detail": "E3 added", "actor": None}],
}
BAD: list[tuple[str, Any]] = [
    ("seat_forecast", [{"sku_id": "e3", "demand": "12a", "prepaid_enabled": 8}]),
    ("seat_forecast", [{"sku_id": "e3", "demand": 10, "prepaid_enabled": [8]}]),
    ("seat_forecast", [{"sku_id": "e3", "demand": 10, "prepaid_enabled": 8, "consumed": "8"}]),
    ("health", {"error": "three"}),
    ("health", ["error"]),
    ("health", {"error": None}),
    ("drift", [["group", "G"]]),
    ("drift", {"kind": "group"}),
    # a count below zero, or true/false, is no count: it would draw below the chart's axis
    ("findings_by_code", {"CountViolation": -4}),
    ("findings_by_code", {"CountViolation": True}),
    ("health", {"error": -1}),
    ("seat_forecast", [{"sku_id": "e3", "demand": -10, "prepaid_enabled": 8}]),
    ("seat_forecast", [{"sku_id": "e3", "demand": 10, "prepaid_enabled": 8, "consumed": -1}]),
]


def bad_record(field: str, value: Any) -> dict[str, Any]:
    return {**GOOD, "date": "2026-11-30", field: value}


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_stored_record_with_bad_numbers_is_skipped_and_the_page_renders(
    field: str, value: Any
) -> None:
    blobs = InMemoryBlobStore()
    blobs.put(history_name("2026-11-29"), orjson.dumps(GOOD), content_type="application/json")
    blobs.put(
        history_name("2026-11-30"),
        orjson.dumps(bad_record(field, value)),
        content_type="application/json",
    )

    records = load_history_blobs(blobs)

    assert [r["date"] for r in records] == ["2026-11-29"]
    trends(records)
    report_from_snapshot(
        load_tenant(str(DEMO)), source="s", generated_at="2026-12-01T00:00:00+00:00",
        history=records,
    )  # fmt: skip


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_history_file_with_bad_numbers_is_skipped_with_a_note(
    field: str, value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "a.json").write_text(json.dumps(GOOD))
    (tmp_path / "h" / "b.json").write_text(json.dumps(bad_record(field, value)))
    out = tmp_path / "r.html"

    status = main(
        ["report", "html", "--snapshot", str(DEMO), "--history", str(tmp_path / "h"),
         "--out", str(out)]
    )  # fmt: skip

    assert status == 0
    assert "note: --history: skipped 1 JSON file(s)" in capsys.readouterr().err
    assert out.exists()
