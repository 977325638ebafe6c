"""bench/evaluate.py judges speed only on outputs that hold every user, and its exit code says
whether the targets were met: it printed "NOT met" and exited 0, and a fast run that wrote half
an output (or nothing) was timed like a complete one."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench.evaluate import json_problem, table_problem
from bench.shapes import SHAPES
from graphsim.synthetic import generate_tenant
from tests.python_run import ROOT

USERS = 120
CLI = str(Path(sys.executable).parent / "license-guard")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`license-guard evaluate` in both formats on the error-heavy shape of a small tenant."""
    folder = tmp_path_factory.mktemp("evaluate")
    tenant = generate_tenant(users=USERS, groups=8, skus=6, seed=7, unlicensed_groups=2)
    tenant.pop("x-graphsim", None)
    SHAPES["error-heavy"](tenant, random.Random(7))
    snapshot = folder / "snapshot.json"
    snapshot.write_bytes(orjson.dumps(tenant))
    written = {}
    for fmt in ("json", "table"):
        written[fmt] = folder / f"out.{fmt}"
        done = subprocess.run(
            [CLI, "evaluate", "--snapshot", str(snapshot), "--format", fmt,
             "--out", str(written[fmt])],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return written


def cut(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    short = path.with_suffix(path.suffix + ".cut")
    short.write_bytes(data[: int(len(data) * keep)])
    return short


def test_complete_outputs_pass(outputs: dict[str, Path]) -> None:
    assert json_problem(outputs["json"], USERS) == ""
    assert table_problem(outputs["table"], USERS) == ""


def test_a_json_output_with_fewer_users_fails(outputs: dict[str, Path]) -> None:
    assert json_problem(outputs["json"], USERS + 1) == f"json: {USERS} of {USERS + 1} users listed"
    assert json_problem(cut(outputs["json"], 0.5), USERS).startswith("json: ")
    assert json_problem(cut(outputs["json"], 0), USERS) == "json: empty output"


def test_a_table_cut_short_fails(outputs: dict[str, Path]) -> None:
    """Half a table: its header counts every user, its sections do not."""
    assert table_problem(cut(outputs["table"], 0.5), USERS).startswith("table: ")
    assert table_problem(outputs["table"], USERS - 1) == f"table: header {USERS} users"


def test_the_benchmark_exits_non_zero_when_a_target_is_missed() -> None:
    """A missed target must show in the exit code (make bench, CI). The miss is made certain
    with a ratio target no run meets: at 300 users a process start outweighs json.load of the
    small file, but a loaded machine slows the floor's process start too and the default 2.5
    was met now and then."""
    done = subprocess.run(
        [sys.executable, "bench/evaluate.py", "--users", "300", "--shapes", "processed",
         "--runs", "1", "--ratio-target", "0.01"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip

    assert "evaluate: NOT met: processed" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "output incomplete" not in done.stdout
    assert done.returncode == 1


@pytest.mark.parametrize("split", [1, 10, 20])
def test_a_user_key_split_over_two_reads_is_counted_once(tmp_path: Path, split: int) -> None:
    """The JSON check reads a megabyte at a time (a map of the whole 620 MB output raised the
    bench's own peak RSS, which the kernel then reported for every child it started): a key
    that straddles two reads counts once, and none twice."""
    key = b',"userPrincipalName":'
    head = b"x" * ((1 << 20) - split)  # the key starts `split` bytes before the first read ends
    out = tmp_path / "out.json"
    out.write_bytes(head + key + b'"a"' + key + b'"b"')

    assert json_problem(out, 2) == ""
    assert json_problem(out, 3) == "json: 2 of 3 users listed"
