"""Scale check: page every user of a 100k-user synthetic tenant over real loopback HTTP.

Starts `python -m graphsim --synthetic ...` as a separate process, pages
`/users?$select=id,assignedLicenses,licenseAssignmentStates,usageLocation&$top=999`, and prints
pages, requests, wall time, and the server's peak RSS (VmHWM from /proc).

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
        pages = requests = users = 0
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
                users += len(body["value"])
                url = body.get("@odata.nextLink")
        wall = time.monotonic() - t0
        print(f"users={users} pages={pages} requests={requests} bytes={nbytes / 1e6:.1f}MB")
        print(f"wall time paging: {wall:.2f}s ({users / wall:,.0f} users/s)")
        print(f"server peak RSS: {peak_rss_mb(proc.pid):.0f} MB (after load: {rss_loaded:.0f} MB)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
