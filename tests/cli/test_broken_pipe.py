"""A reader that stops early (`license-guard whatif ... | head -1`) does not change what the exit
status means. A BrokenPipeError used to exit 0, which hid a whatif's or a diff's exit 1 (data
loss risk) from a script running with `set -o pipefail`.

Each command runs as an operator runs it, in a child process writing into a real pipe whose
reading end is already closed: every write meets EPIPE, as after `head -1` has gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from shared.cli.main import EXIT_DATA_LOSS, EXIT_OK, EXIT_READER_GONE
from tests.demo_tenant import DEMO

ROOT = Path(__file__).resolve().parents[2]


def run_into_a_closed_pipe(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m shared ARGS | (a reader that has gone)`."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "shared", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


def quiet(stderr: str) -> bool:
    """No traceback, and no "Exception ignored" from the interpreter's last flush."""
    return "Traceback" not in stderr and "Exception ignored" not in stderr


def test_a_whatif_at_risk_still_exits_1_when_the_reader_stops() -> None:
    change = ["--add-sku", "Licensing_Office365_E3_Teams", "STANDARDPACK"]

    done = run_into_a_closed_pipe("whatif", "--snapshot", str(DEMO), *change)

    assert done.returncode == EXIT_DATA_LOSS
    assert quiet(done.stderr), done.stderr


def test_a_diff_with_losses_still_exits_1_when_the_reader_stops(tmp_path: Path) -> None:
    """The demo tenant without its base E3 group: its members lose their mailboxes."""
    snapshot = json.loads(DEMO.read_text(encoding="utf-8"))
    snapshot["groups"] = [
        g for g in snapshot["groups"] if g.get("displayName") != "Licensing_Office365_E3_Base"
    ]
    after = tmp_path / "after.json"
    after.write_text(json.dumps(snapshot), encoding="utf-8")

    done = run_into_a_closed_pipe("diff", str(DEMO), str(after))

    assert done.returncode == EXIT_DATA_LOSS
    assert quiet(done.stderr), done.stderr


def test_a_command_with_nothing_to_report_still_exits_0() -> None:
    for args in (
        ["evaluate", "--snapshot", str(DEMO), "--all"],
        ["evaluate", "--snapshot", str(DEMO), "--format", "json"],
        ["report", "migration", "--snapshot", str(DEMO), "--format", "csv"],
    ):
        done = run_into_a_closed_pipe(*args)

        assert done.returncode == EXIT_OK, args
        assert quiet(done.stderr), done.stderr


def test_a_command_stopped_while_it_prints_exits_141_as_a_shell_reports_sigpipe() -> None:
    """`preflight` writes its checklist itself and flushes it before it returns: the pipe
    breaks inside the command, whose status is then unknown; it ends as SIGPIPE would end it."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",  # nothing listens: a checklist of failures
        "GRAPH_STATIC_TOKEN": "graphsim-token",
    }

    done = run_into_a_closed_pipe("preflight", env=env)

    assert done.returncode == EXIT_READER_GONE == 128 + 13
    assert quiet(done.stderr), done.stderr
