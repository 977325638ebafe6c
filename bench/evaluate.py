"""Benchmark `license-guard evaluate` on each tenant shape against the floor of reading its input.

Generates a synthetic tenant deterministically (graphsim's generator: 100k users, 60 licensed
groups including one with a quarter of the users, 30 SKUs, about 3 groups per user), derives
the shapes of `bench/shapes.py` from it (processed, pending-heavy, error-heavy, direct-heavy),
plus a 250k-user processed tenant, and runs in fresh processes, side by side on the same file:

* the floor: `json.load` of the snapshot;
* `license-guard evaluate --format json` (process start, parse, evaluate, render, write);
* `license-guard evaluate --format table` likewise.

Runs alternate (floor, json, table, floor, ...) so machine load hits all three alike; medians
are printed. Targets: each format ≤ 2.5× the floor of the same file, peak RSS ≤ 1 GB at 100k
users, on outputs that hold every user: after each format's first run its output is read back
(not timed): the JSON must list every user of the snapshot, the table must count them all and
list every user with findings it counts (a fast run that wrote less is no pass). Exits 1 when a
shape misses a target.
Run: `make bench` or `python bench/evaluate.py [--users N] [--runs R] [--shapes ...]`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.shapes import SHAPES
from graphsim.synthetic import generate_tenant

FLOOR = "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    json.load(f)\n"
RATIO_TARGET = 2.5
RSS_TARGET_MIB = 1024
RSS_TARGET_USERS = 100_000
LARGE_USERS = 250_000


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mib: int


def run(cmd: list[str]) -> Sample:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {code}")
    return Sample(elapsed, usage.ru_maxrss // 1024)


def generate(users: int, groups: int, skus: int, seed: int) -> bytes:
    """The processed tenant as snapshot bytes (the user fields the service selects)."""
    tenant = generate_tenant(users=users, groups=groups, skus=skus, seed=seed)
    for user in tenant["users"]:
        user.pop("assignedPlans", None)  # not a field the service selects
    tenant.pop("x-graphsim", None)
    return orjson.dumps(tenant)


def write_shapes(workdir: Path, shapes: list[str], users: int, args: argparse.Namespace) -> None:
    """Write `<shape>.json` for each shape. Run in a child process: a child's peak RSS as the
    kernel reports it starts from its parent's size at fork, so the parent stays small."""
    started = time.perf_counter()
    base = generate(users, args.groups, args.skus, args.seed)
    print(f"generated {users} users in {time.perf_counter() - started:.1f} s", flush=True)
    for name in shapes:
        tenant = orjson.loads(base)
        SHAPES[name if name in SHAPES else "processed"](tenant, random.Random(args.seed))
        (workdir / f"{name}.json").write_bytes(orjson.dumps(tenant))
        del tenant


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


_TABLE_USERS = re.compile(rb": (\d+) users,")
_SECTION_COUNT = re.compile(rb"\((\d+)\)")


def json_problem(out: Path, users: int) -> str:
    """What is wrong with an `evaluate --format json` output of `users` users (empty: nothing):
    each user's entry has one `"userPrincipalName":` key, which a name cannot spell (its
    quotes would be escaped)."""
    if out.stat().st_size == 0:
        return "json: empty output"
    # Read a megabyte at a time, not mapped whole: the kernel counts this process's peak RSS
    # into every child it starts next (ru_maxrss), so a 620 MB map inflated every later figure.
    listed, pattern, tail = 0, b',"userPrincipalName":', b""
    with out.open("rb") as f:
        while chunk := f.read(1 << 20):
            window = tail + chunk
            listed += window.count(pattern)
            tail = window[-(len(pattern) - 1) :]  # a key split over two reads is counted once
    return "" if listed == users else f"json: {listed} of {users} users listed"


def table_problem(out: Path, users: int) -> str:
    """What is wrong with an `evaluate --format table` output of `users` users: its header's
    count, its two user sections' counts, and the users listed with findings."""
    with out.open("rb") as f:
        header = _TABLE_USERS.search(f.readline())
        with_findings = without = None
        listed, in_section = 0, False
        for line in f:
            if line.startswith(b"USERS WITH FINDINGS ("):
                with_findings, in_section = int(_SECTION_COUNT.search(line)[1]), True  # type: ignore[index]
            elif line.startswith(b"USERS WITHOUT FINDINGS ("):
                without, in_section = int(_SECTION_COUNT.search(line)[1]), False  # type: ignore[index]
            elif in_section and line.startswith(b"  ") and line[2:3] not in (b" ", b"\n"):
                listed += 1
    counted = (with_findings or 0) + (without or 0)
    if header is None or int(header[1]) != users:
        return f"table: header {'missing' if header is None else header[1].decode()} users"
    if with_findings is None or without is None or counted != users:
        return f"table: {counted} of {users} users in its sections"
    if listed != with_findings:
        return f"table: {listed} of {with_findings} users with findings listed"
    return ""


def measure(
    snapshot: Path, out: Path, runs: int, users: int
) -> tuple[dict[str, list[Sample]], list[str]]:
    cli = shutil.which("license-guard") or str(Path(sys.executable).parent / "license-guard")
    cmds = {
        "floor": [sys.executable, "-c", FLOOR, str(snapshot)],
        "json": [cli, "evaluate", "--snapshot", str(snapshot), "--format", "json"],
        "table": [cli, "evaluate", "--snapshot", str(snapshot), "--format", "table"],
    }
    cmds["json"] += ["--out", str(out)]
    cmds["table"] += ["--out", str(out)]
    samples: dict[str, list[Sample]] = {name: [] for name in cmds}
    problems = []
    checks = {"json": json_problem, "table": table_problem}
    for n in range(runs):
        for name, cmd in cmds.items():
            samples[name].append(run(cmd))
            if n == 0 and name in checks and (problem := checks[name](out, users)):
                problems.append(problem)
    return samples, problems


def report(
    name: str,
    users: int,
    size_mb: float,
    measured: tuple[dict[str, list[Sample]], list[str]],
    ratio_target: float = RATIO_TARGET,
) -> bool:
    """Print one shape's rows; True when every target is met on complete outputs."""
    samples, problems = measured
    floor = statistics.median(s.seconds for s in samples["floor"])
    floor_rss = max(s.rss_mib for s in samples["floor"])
    print(
        f"{name} ({users} users): {size_mb:.0f} MB, json.load floor {floor:.2f} s "
        f"({floor_rss} MiB), median of {len(samples['floor'])} runs"
    )
    ok = True
    for fmt in ("json", "table"):
        wall = statistics.median(s.seconds for s in samples[fmt])
        rss = max(s.rss_mib for s in samples[fmt])
        ratio = wall / floor
        ratio_ok = ratio <= ratio_target
        rss_text = f"{rss} MiB"
        if users <= RSS_TARGET_USERS:
            rss_ok = rss <= RSS_TARGET_MIB
            rss_text += f" (target <= {RSS_TARGET_MIB}: {verdict(rss_ok)})"
        else:
            rss_ok = True
            rss_text += " (RSS target is set at 100k users)"
        spread = ", ".join(f"{s.seconds:.2f}" for s in samples[fmt])
        print(
            f"  evaluate --format {fmt:<5} {wall:6.2f} s [{spread}]  ratio {ratio:4.2f}x "
            f"(target <= {ratio_target:g}: {verdict(ratio_ok)})  peak RSS {rss_text}"
        )
        ok = ok and ratio_ok and rss_ok
    for problem in problems:
        print(f"  FAIL, output incomplete: {problem}")
    return ok and not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--large-users", type=int, default=LARGE_USERS)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are printed")
    parser.add_argument(
        "--ratio-target",
        type=float,
        default=RATIO_TARGET,
        help=f"the ratio each format must stay under (issue #12: {RATIO_TARGET})",
    )
    parser.add_argument("--write-shapes", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=[*SHAPES, "large"],
        default=[*SHAPES, "large"],
        help="which shapes to measure (large: the --large-users processed tenant)",
    )
    args = parser.parse_args()
    if args.write_shapes:  # the child that generates (see write_shapes)
        large = args.shapes == ["large"]
        write_shapes(
            Path(args.write_shapes), args.shapes, args.large_users if large else args.users, args
        )
        return 0

    print(
        f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs"
    )
    workdir = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    results: dict[str, bool] = {}
    try:
        out = workdir / "evaluation.out"
        shapes = [s for s in args.shapes if s != "large"]
        batches = [(shapes, args.users, args.runs)] if shapes else []
        if "large" in args.shapes:
            batches.append((["large"], args.large_users, max(1, args.runs - 1)))
        for names, users, runs in batches:
            child = [sys.executable, __file__, "--write-shapes", str(workdir), "--shapes", *names]
            child += ["--users", str(args.users), "--large-users", str(args.large_users)]
            child += ["--groups", str(args.groups), "--skus", str(args.skus)]
            subprocess.run([*child, "--seed", str(args.seed)], check=True)
            for name in names:
                snapshot = workdir / f"{name}.json"
                size = snapshot.stat().st_size / 1e6
                label = f"processed-{users // 1000}k" if name == "large" else name
                results[label] = report(
                    label, users, size, measure(snapshot, out, runs, users), args.ratio_target
                )
                snapshot.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    failed = [name for name, ok in results.items() if not ok]
    print(f"evaluate: {'all targets met' if not failed else 'NOT met: ' + ', '.join(failed)}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
