"""`.ci/run` reads `make test`'s log with tools/ci_test_log.py: pytest exits 0 when the tests that
ran passed, however many skipped, so a CI run whose browser tests all skipped (Chromium could
not be installed) was green. Only the skips made on purpose pass now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.python_run import ROOT
from tools.ci_test_log import problems

SUMMARY = "========== 1432 passed, {skipped} skipped in 312.40s (0:05:12) ==========\n"
ON_PURPOSE = (
    "SKIPPED [1] tests/graphsim/test_synthetic.py:258: set RUN_SLOW=1\n"
    "SKIPPED [2] tests/adapters/test_directory_contract.py:429: soft delete and restore are "
    "graphsim's\n"
)
BROWSER = (
    "SKIPPED [6] tests/browser/conftest.py:17: headless Chromium is not available and could "
    "not be installed: apt-get update failed: Temporary failure resolving\n"
)


def test_a_run_with_only_the_skips_made_on_purpose_is_green() -> None:
    assert problems(ON_PURPOSE + SUMMARY.format(skipped=3)) == []


def test_a_run_whose_browser_tests_skipped_is_not_green() -> None:
    found = problems(ON_PURPOSE + BROWSER + SUMMARY.format(skipped=9))

    assert found == [
        "6 test(s) skipped at tests/browser/conftest.py:17: headless Chromium is not available "
        "and could not be installed: apt-get update failed: Temporary failure resolving "
        "(CI_ALLOW_SKIPS=1 to go on)"
    ]
    assert problems(BROWSER + SUMMARY.format(skipped=6), allow_skips=True) == []


def test_a_run_that_passed_nothing_is_not_green() -> None:
    assert problems("=== no tests ran in 0.01s ===\n") != []
    assert problems("=== 0 passed, 3 skipped in 0.2s ===\n", allow_skips=True) != []


def test_the_script_exits_non_zero_and_says_why(tmp_path: Path) -> None:
    log = tmp_path / "ci-test.log"
    log.write_text(BROWSER + SUMMARY.format(skipped=6))

    done = subprocess.run(
        [sys.executable, "tools/ci_test_log.py", str(log)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 1
    assert "CI: 6 test(s) skipped at tests/browser/conftest.py:17" in done.stderr
