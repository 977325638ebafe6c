"""Benchmark `license-guard evaluate --format json` against the floor of merely reading its input.

Generates a synthetic tenant deterministically (graphsim's generator: 100k users, 60 licensed
groups including one with a quarter of the users, 30 SKUs, about 3 groups per user, a few % of
users in each error), writes it as a snapshot, then runs in fresh processes, side by side:

* the floor: `json.load` of that file;
* end to end: `license-guard evaluate --format json` on it (process start, parse, evaluate,
  render, write).

Prints wall times, their ratio and peak RSS of each process. Targets: ratio ≤ 3, RSS ≤ 1 GB.
Run: `make bench` or `python bench/evaluate.py [--users N] [--seed S] [--runs R]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from graphsim.synthetic import generate_tenant

FLOOR = "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    json.load(f)\n"


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return elapsed, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--skus", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are printed")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    try:
        snapshot = workdir / "snapshot.json"
        started = time.perf_counter()
        tenant = generate_tenant(
            users=args.users, groups=args.groups, skus=args.skus, seed=args.seed
        )
        for user in tenant["users"]:
            # A snapshot holds the user fields the service selects; assignedPlans is not one.
            user.pop("assignedPlans", None)
        tenant.pop("x-graphsim", None)
        snapshot.write_bytes(orjson.dumps(tenant))
        generated = time.perf_counter() - started
        size_mb = snapshot.stat().st_size / 1e6
        states = sum(len(u.get("licenseAssignmentStates") or ()) for u in tenant["users"])
        members = sum(len(g.get("members") or ()) for g in tenant["groups"])
        del tenant

        floor_cmd = [sys.executable, "-c", FLOOR, str(snapshot)]
        cli = shutil.which("license-guard") or str(Path(sys.executable).parent / "license-guard")
        out = workdir / "evaluation.json"
        e2e_cmd = [cli, "evaluate", "--snapshot", str(snapshot), "--format", "json"]
        e2e_cmd += ["--out", str(out)]
        floors, e2es = [], []
        for _ in range(args.runs):
            floors.append(run(floor_cmd))
            e2es.append(run(e2e_cmd))
        floor_s = statistics.median(t for t, _ in floors)
        e2e_s = statistics.median(t for t, _ in e2es)
        floor_rss = max(r for _, r in floors)
        e2e_rss = max(r for _, r in e2es)
        ratio = e2e_s / floor_s

        print(
            f"tenant: {args.users} users, {args.groups} licensed groups, {args.skus} SKUs, "
            f"seed {args.seed}; {members} memberships, {states} assignment states"
        )
        print(
            f"snapshot: {size_mb:.1f} MB, generated in {generated:.1f} s; "
            f"output {out.stat().st_size / 1e6:.1f} MB; median of {args.runs} runs"
        )
        print(f"{'':<34}{'wall s':>9}{'peak RSS MiB':>15}")
        print(f"{'floor: json.load of the snapshot':<34}{floor_s:>9.2f}{floor_rss:>15}")
        print(f"{'license-guard evaluate --format json':<34}{e2e_s:>9.2f}{e2e_rss:>15}")
        print(
            f"ratio end-to-end / floor: {ratio:.2f} (target <= 3.00: "
            f"{'met' if ratio <= 3 else 'NOT met'}); peak RSS target <= 1024 MiB: "
            f"{'met' if e2e_rss <= 1024 else 'NOT met'}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
