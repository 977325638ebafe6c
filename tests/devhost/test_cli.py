"""`python -m devhost`: starts from a settings file, serves, and stops cleanly on signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMPLE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app", "tests.devhost.sample_app:app", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until_started(process: subprocess.Popen[str], timeout: float = 20) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Host started on"):
            return lines
    process.kill()
    _, err = process.communicate()
    pytest.fail(f"devhost did not start: {lines} {err}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_on_signal(
    tmp_path: Path, settings: dict[str, str], sig: signal.Signals
) -> None:
    file = tmp_path / "local.settings.json"
    file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    process = _start(["--settings", str(file), "--port", "0", "--function-key", "cli-key"])
    try:
        lines = _read_until_started(process)
        text = "\n".join(lines)
        base = re.search(r"Host started on (http://127\.0\.0\.1:\d+)", text)
        assert base is not None
        assert f"{base[1]}/api/echo/{{name}}?code=cli-key" in text
        assert "slow: [GET]" in text
        assert f"tick: timerTrigger '{settings['SAMPLE_SCHEDULE']}'" in text
        assert f"shout: queueTrigger {settings['SAMPLE_IN_QUEUE']}" in text
        response = httpx.get(f"{base[1]}/api/echo/cli?code=cli-key", timeout=10)
        assert response.json()["name"] == "cli"
        assert httpx.get(f"{base[1]}/api/echo/cli", timeout=10).status_code == 401
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Host stopped" in out
    assert "Executing 'echo'" in err  # invocation lines go to stderr


def test_cli_reports_a_missing_setting(tmp_path: Path, settings: dict[str, str]) -> None:
    file = tmp_path / "local.settings.json"
    values = {k: v for k, v in settings.items() if k != "SAMPLE_SCHEDULE"}
    file.write_text(json.dumps({"Values": values}))
    process = _start(["--settings", str(file), "--port", "0"])
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "'SAMPLE_SCHEDULE' is not defined" in err
    assert "Host started" not in out
