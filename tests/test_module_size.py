"""The architecture's size rule (docs/architecture.md): no module of the app, the dev host or
graphsim over 400 lines. A module that grows past it holds more than one thing: split it by
what it holds, not by line count."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "functions", "devhost", "graphsim")
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    modules = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in modules
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }

    assert len(modules) > 200  # the packages were found
    assert too_long == {}
