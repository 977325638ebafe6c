"""What an admin's console does to the commands: a Windows code page on standard output (a
redirect or a pipe there writes in the ANSI code page, cp1252), Ctrl-C."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.demo_tenant import DEMO, E3_BASE, MEGAN
from tests.python_run import run_module

UNICODE_NAME = "Şherman ✓ مرحبا"  # none of it in cp1252


@pytest.fixture
def unicode_snapshot(tmp_path: Path) -> str:
    """The demo tenant with a display name no Western code page holds (a user sets their own)."""
    document = json.loads(DEMO.read_text(encoding="utf-8"))
    for user in document["users"]:
        if user["id"] == MEGAN:
            user["displayName"] = UNICODE_NAME
    path = tmp_path / "unicode.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate"],
        ["report", "migration"],
        ["whatif", "--remove-member", E3_BASE, MEGAN],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_table_to_a_cp1252_standard_output_names_the_user_without_a_traceback(
    command: list[str], unicode_snapshot: str
) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}

    done = run_module("shared", *command, "--snapshot", unicode_snapshot, env=env)

    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert "\\u015eherman \\u2713" in done.stdout
