"""A name in a snapshot holding a lone UTF-16 surrogate (`\\ud800` in the JSON, which Python's
parser takes although it is not Unicode text) stopped every export with a traceback: UTF-8
cannot encode it (CSV, the scripts, the page) nor orjson (JSON). It is shown as U+FFFD, with a
warning naming how many."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.adapters.snapshot import load_snapshot
from shared.cli.main import EXIT_OK, main
from tests.demo_tenant import DEMO, MEGAN

COMMANDS = [
    ["evaluate", "--format", "csv"],
    ["evaluate", "--format", "json"],
    ["report", "migration", "--format", "csv"],
    ["report", "migration", "--script", "ps1"],
    ["report", "migration", "--script", "sh"],
    ["report", "html"],
]


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    document = json.loads(DEMO.read_text())
    megan = next(u for u in document["users"] if u["id"] == MEGAN)
    megan["displayName"] = "Megan \ud83d Bowen"  # a high surrogate with no low one after it
    document["groups"][0]["displayName"] = "\udfffE3 \U0001f600 Base"  # lone low; a real pair
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))  # ensure_ascii: the surrogates as \\u escapes
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_export_writes_the_name_with_a_replacement_character(
    command: list[str], snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    status = main([*command, "--snapshot", str(snapshot), "--out", str(out)])

    err = capsys.readouterr().err
    assert status == EXIT_OK, err
    assert "Traceback" not in err
    text = out.read_bytes().decode("utf-8")
    assert "Megan \ufffd Bowen" in text


def test_the_snapshot_warns_and_keeps_real_pairs(snapshot: Path) -> None:
    loaded = load_snapshot(snapshot)

    assert loaded.tenant.users[MEGAN].display_name == "Megan \ufffd Bowen"
    names = {g.name for g in loaded.tenant.groups.values()}
    assert "\ufffdE3 \U0001f600 Base" in names
    assert any("lone UTF-16 surrogate" in w for w in loaded.warnings)
