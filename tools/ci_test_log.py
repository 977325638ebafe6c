"""CI's reading of `make test`'s log (`.ci/run`): green only when pytest passed tests and skipped
none but the tests skipped on purpose.

`make test` already fails on a failing test, lint or type check. What it lets through is a
suite that did not do its work: pytest exits 0 when every test that ran passed, however many
were skipped, and the browser tests (the report page's and the Teams card's escaping, in
Chromium) skip when Chromium cannot be installed. A skip whose reason is not in
`EXPECTED_SKIPS` fails CI; `CI_ALLOW_SKIPS=1` lets a machine without Chromium or npm go on,
saying which tests did not run.

Run: `python tools/ci_test_log.py .ci-test.log` (exit 1 with the reasons on stderr).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

EXPECTED_SKIPS = (
    "set RUN_SLOW=1",  # the 100k-user generator and shape tests, `make bench`'s size
    "soft delete and restore are graphsim's",  # the directory contract, on the in-memory fake
)
PASSED = re.compile(r"\b(\d+) passed\b")
SKIPPED = re.compile(r"^SKIPPED \[(\d+)\] (\S+?): (.*)$", re.MULTILINE)


def problems(log: str, *, allow_skips: bool = False) -> list[str]:
    """What keeps this `make test` log from being green, beyond its exit code."""
    found = []
    if not any(int(n) > 0 for n in PASSED.findall(log)):
        found.append("pytest reported no passing tests; a run that tested nothing is a failure")
    if not allow_skips:
        found += [
            f"{count} test(s) skipped at {where}: {reason} (CI_ALLOW_SKIPS=1 to go on)"
            for count, where, reason in SKIPPED.findall(log)
            if not any(expected in reason for expected in EXPECTED_SKIPS)
        ]
    return found


def main(argv: list[str]) -> int:
    log = Path(argv[1]).read_text(encoding="utf-8", errors="replace")
    found = problems(log, allow_skips=os.environ.get("CI_ALLOW_SKIPS") == "1")
    for line in found:
        print(f"CI: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
