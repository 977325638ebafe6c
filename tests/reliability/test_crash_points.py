"""Every handler is safe to crash between any two steps: the crash-point suite.

The scenario (tests/reliability/harness.py) runs through every handler once cleanly, then once
per declared crash point with the worker "dying" there and the host delivering again. The end
state must be the clean one. The registry cannot drift from the code: every `crash_point` call
names a declared point and every declared point is called, reached by the scenario, in its
handler's order; and a handler that acts (a queue send, a Graph write) next to any other step
without a crash point in between fails `test_no_step_goes_without_a_crash_point`.
"""

from __future__ import annotations

import ast
import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from shared.service.crashpoints import DECLARED, STEPS, crash_point
from tests.reliability.harness import (
    build_host,
    end_state,
    points_reached,
    run_scenario,
    unguarded_steps,
)

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def clean_run() -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    host = build_host()
    asyncio.run(run_scenario(host))
    return end_state(host), tuple(host.trace)


def crashed_run(point: str) -> tuple[dict[str, Any], bool]:
    host = build_host(crash_at=point)
    asyncio.run(run_scenario(host))
    return end_state(host), host.recorder.crashed


def _points_in_source() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "shared").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "crash_point"
            ):
                arg = node.args[1]
                assert isinstance(arg, ast.Constant), f"{path}: crash point name must be literal"
                names.add(str(arg.value))
    return names


def test_the_registry_and_the_code_name_the_same_points() -> None:
    assert _points_in_source() == set(DECLARED)
    assert len(DECLARED) == sum(len(points) for points in STEPS.values())  # no name twice
    for handler, points in STEPS.items():
        assert all(p.startswith(handler + ".") for p in points), handler


def test_an_undeclared_point_is_a_programming_error() -> None:
    host = build_host()
    with pytest.raises(KeyError, match="not declared"):
        crash_point(host.svc, "recompute.after_something_new")


def test_a_clean_run_reaches_every_point_in_its_handlers_order() -> None:
    _, trace = clean_run()
    reached = points_reached(list(trace))
    assert set(DECLARED) - set(reached) == set()
    first = {name: reached.index(name) for name in DECLARED}
    for handler, points in STEPS.items():
        assert sorted(points, key=first.__getitem__) == list(points), handler


def test_no_step_goes_without_a_crash_point() -> None:
    _, trace = clean_run()
    assert unguarded_steps(list(trace)) == []


def test_the_step_check_catches_an_unguarded_send() -> None:
    """The detector itself: a send right after a save, or two different sends, with no point
    between them, is flagged; saves in a row, or steps split by a point, are not."""
    trace = [
        ("handler", "h"),
        ("write", "findings"),
        ("write", "servicestate"),
        ("point", "p"),
        ("send", "recompute-users"),
        ("write", "reprocessledger"),
        ("handler", "h"),
        ("graph", "reprocess"),
    ]
    assert unguarded_steps(trace) == [(("send", "recompute-users"), ("write", "reprocessledger"))]


@pytest.mark.parametrize("point", sorted(DECLARED))
def test_a_crash_at_any_point_then_redelivery_ends_as_a_clean_run(point: str) -> None:
    clean, _ = clean_run()
    crashed, happened = crashed_run(point)

    assert happened, f"the scenario never reached {point}"
    assert crashed == clean  # mail too: a draft, recorded, then sent (no resend window)
    assert clean["mailResends"] == 0
    assert clean["draftsLeft"] == 0
    assert clean["queued"] == 0
