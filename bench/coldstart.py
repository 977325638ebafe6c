"""Benchmark the cold start: `import function_app`, and the first webhook answer on the dev host.

Every cold start (scale-out, a recycled worker) loads `function_app` before the first request;
the webhook's validation handshake is often that request, and Graph gives it 10 seconds.

* Import: in fresh interpreters, `import function_app` against `import azure.functions` (the
  floor: the Functions library itself), alternating, median of `--runs`; the time of the import
  statement alone, measured in the child. Target: ≤ 2.5× the floor. `--python` names the
  interpreter: `make bench` passes one with the production lock only (`requirements.txt`, what
  `azd deploy` installs), as the development environment's extra packages change what the
  production imports cost (structlog loads `rich`, a linter's dependency, when it is there).
* First answer: with Azurite already running, spawn `python -m devhost` (the function app on
  the dev host) and time from the spawn to the first 200 on the validation handshake
  `POST /api/graph/notifications?validationToken=x`. Target: ≤ 1 s (median of
  max(3, `--runs` // 2) spawns: 3 at the default 7).

Exits 1 when a target is missed. Run: `make bench` or `python bench/coldstart.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.azurite import Azurite  # noqa: E402 - after the path setup

IMPORT_TARGET = 2.5
FIRST_ANSWER_TARGET_S = 1.0
FUNCTION_KEY = "bench-function-key-0123456789abcdef"
_TIMED_IMPORT = (
    "import time\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"
)


def import_seconds(python: str, module: str) -> float:
    """The import statement's time in a fresh `python`, its bytecode cached (written by the
    warm-up run whatever the environment's PYTHONDONTWRITEBYTECODE: the figure must not depend
    on it; pip compiles the packages at install)."""
    done = subprocess.run(
        [python, "-c", _TIMED_IMPORT.format(module=module)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _has_only_the_production_lock(python: str) -> bool:
    """Whether `python`'s installed distributions are exactly `requirements.txt`'s pins."""
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {_pin(line) for line in listed.splitlines() if "==" in line}
    installed -= {("pip", ""), ("setuptools", "")}
    lock = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return installed == {_pin(line) for line in lock if "==" in line and not line.startswith("#")}


def _pin(line: str) -> tuple[str, str]:
    name, _, version = line.split(";", maxsplit=1)[0].strip().partition("==")
    name = name.lower().replace("_", "-").replace(".", "-")
    return (name, "" if name in ("pip", "setuptools") else version.split()[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_file(directory: Path, connection_string: str, port: int) -> Path:
    values = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    values["Values"]["AzureWebJobsStorage"] = connection_string
    values["Values"]["NOTIFICATION_URL"] = f"http://127.0.0.1:{port}/api/graph/notifications"
    values["Values"]["LIFECYCLE_NOTIFICATION_URL"] = f"http://127.0.0.1:{port}/api/graph/lifecycle"
    path = directory / "local.settings.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


def first_answer_seconds(settings: Path, port: int, timeout: float = 30.0) -> float:
    """Seconds from spawning the dev host to its first 200 on the validation handshake."""
    url = f"http://127.0.0.1:{port}/api/graph/notifications?validationToken=x&code={FUNCTION_KEY}"
    cmd = [sys.executable, "-m", "devhost", "--settings", str(settings), "--port", str(port)]
    cmd += ["--function-key", FUNCTION_KEY]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"devhost exited at start: {err.strip()}")
            try:
                request = urllib.request.Request(url, data=b"", method="POST")
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200 and response.read() == b"x":
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.005)
        raise SystemExit(f"no answer from the dev host within {timeout:.0f} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="repetitions; medians are printed")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter the imports are timed in (make bench: the production lock's)",
    )
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at start: {load} on {os.cpu_count()} CPUs")

    production = _has_only_the_production_lock(args.python)
    print(
        f"imports timed in {args.python}: "
        + (
            "the production lock only (requirements.txt)"
            if production
            else "an environment with packages the production lock does not have"
        )
    )
    app_s, floor_s = [], []
    for module in ("azure.functions", "function_app"):  # warm-up: the bytecode is written
        import_seconds(args.python, module)
    for _ in range(args.runs):
        floor_s.append(import_seconds(args.python, "azure.functions"))
        app_s.append(import_seconds(args.python, "function_app"))
    app, floor = statistics.median(app_s), statistics.median(floor_s)
    ratio = app / floor
    print(
        f"import function_app {app:.3f} s vs import azure.functions {floor:.3f} s "
        f"(median of {args.runs}): ratio {ratio:.2f}x "
        f"(target <= {IMPORT_TARGET}: {verdict(ratio <= IMPORT_TARGET)})"
    )

    answers = []
    with tempfile.TemporaryDirectory(prefix="lg-coldstart-") as tmp:
        azurite = Azurite()
        endpoints = azurite.start()
        try:
            for _ in range(max(3, args.runs // 2)):
                port = free_port()
                settings = settings_file(Path(tmp), endpoints.connection_string, port)
                answers.append(first_answer_seconds(settings, port))
        finally:
            azurite.stop()
    first = statistics.median(answers)
    spread = ", ".join(f"{s:.2f}" for s in answers)
    print(
        f"first webhook answer (validation handshake) after spawning the dev host: "
        f"{first:.2f} s [{spread}] (target <= {FIRST_ANSWER_TARGET_S:.1f} s: "
        f"{verdict(first <= FIRST_ANSWER_TARGET_S)})"
    )
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if missed(ratio, first) else 0


def missed(ratio: float, first: float) -> list[str]:
    """The targets missed: the import ratio, the first answer's median seconds."""
    return [
        *([f"import {ratio:.2f}x"] if ratio > IMPORT_TARGET else []),
        *([f"first answer {first:.2f} s"] if first > FIRST_ANSWER_TARGET_S else []),
    ]


if __name__ == "__main__":
    sys.exit(main())
