"""Scale check: page every user of a 100k-user synthetic tenant over real loopback HTTP.

Starts `python -m graphsim --synthetic ...` as a separate process, pages
`/users?$select=id,assignedLicenses,licenseAssignmentStates,usageLocation&$top=999`, and prints
pages, requests, wall time, and the server's peak RSS (VmHWM from /proc). Target: server peak
RSS < 1.5 GB, on a paging that returned every user of the spec (`users=`), each id once, in
ceil(users / 999) pages; exits 1 otherwise.

    .venv/bin/python bench/graphsim_scale.py [--synthetic users=100000,groups=60,skus=30,seed=7]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphsim.synthetic import parse_synthetic_spec

RSS_TARGET_MB = 1500  # "< 1.5 GB" (docs/development.md), as tests/graphsim/test_shapes.py checks it
PAGE = 999


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", default="users=100000,groups=60,skus=30,seed=7")
    args = parser.parse_args()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphsim", "--synthetic", args.synthetic, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        base = line.rsplit(" ", 1)[-1]
        print(f"server ready in {time.monotonic() - started:.1f}s: {base}")
        rss_loaded = peak_rss_mb(proc.pid)
        url: str | None = (
            f"{base}/users?$select=id,assignedLicenses,licenseAssignmentStates,usageLocation&$top=999"
        )
        pages = requests = 0
        ids: set[str] = set()
        listed = 0
        nbytes = 0
        t0 = time.monotonic()
        with httpx.Client(headers={"Authorization": "Bearer bench"}, timeout=60) as http:
            while url:
                resp = http.get(url)
                requests += 1
                if resp.status_code == 429:
                    time.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                resp.raise_for_status()
                nbytes += len(resp.content)
                body = orjson.loads(resp.content)
                pages += 1
                listed += len(body["value"])
                ids.update(str(u["id"]) for u in body["value"])
                url = body.get("@odata.nextLink")
        wall = time.monotonic() - t0
        peak = peak_rss_mb(proc.pid)
        print(f"users={listed} pages={pages} requests={requests} bytes={nbytes / 1e6:.1f}MB")
        print(f"wall time paging: {wall:.2f}s ({listed / wall:,.0f} users/s)")
        print(f"server peak RSS: {peak:.0f} MB (after load: {rss_loaded:.0f} MB)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    expected = parse_synthetic_spec(args.synthetic)["users"]
    problems = paging_problems(expected, listed, len(ids), pages)
    if not peak < RSS_TARGET_MB:
        problems.append(f"peak RSS {peak:.0f} MB")
    print(f"target: server peak RSS < {RSS_TARGET_MB} MB, all {expected} users in "
          f"{max(1, -(-expected // PAGE))} pages: "
          f"{'FAIL (' + '; '.join(problems) + ')' if problems else 'pass'}")  # fmt: skip
    return 1 if problems else 0


def paging_problems(expected: int, listed: int, distinct: int, pages: int) -> list[str]:
    """What keeps a paging from counting: users missing or listed twice, or pages other than
    ceil(users / 999) (a server answering short pages costs more requests)."""
    problems = []
    if listed != expected or distinct != expected:
        problems.append(f"{distinct} distinct of {listed} listed users, {expected} expected")
    if pages != max(1, -(-expected // PAGE)):
        problems.append(f"{pages} pages")
    return problems


if __name__ == "__main__":
    sys.exit(main())
