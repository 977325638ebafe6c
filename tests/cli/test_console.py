"""What an admin's console does to the commands: a Windows code page on standard output (a
redirect or a pipe there writes in the ANSI code page, cp1252), Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.demo_tenant import DEMO, E3_BASE, MEGAN
from tests.python_run import ROOT, run_module

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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX: a FIFO holds the command")
def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    held = tmp_path / "snapshot.json"
    os.mkfifo(held)  # the command reads it until we close it: busy until Ctrl-C
    command = [sys.executable, "-m", "shared", "evaluate", "--snapshot", str(held)]
    with subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) as child:
        writer = _writer_once_read(held, child)
        child.send_signal(signal.SIGINT)
        err = child.communicate(timeout=30)[1]
        os.close(writer)

    assert "Traceback" not in err
    assert err.strip() == "license-guard: interrupted"
    assert child.returncode == 130


def _writer_once_read(fifo: Path, child: subprocess.Popen[str]) -> int:
    """The FIFO's write end, opened once the command has opened it to read (it then waits)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.05)
    raise AssertionError("the command never opened its snapshot")
