"""`python tools/count_hops.py` (issue #11's proof, docs/architecture.md) keeps running: it
drives the handlers through the tests' worlds, so a change to those would break it unseen."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.python_run import ROOT


def test_count_hops_traces_the_four_functions_to_the_reprocess_call() -> None:
    done = subprocess.run(
        [sys.executable, "tools/count_hops.py"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "shared/service/reprocessing.py:reprocess_user" in done.stdout
    total = re.search(r"total: (\d+) hops over 4 functions, (\d+) files", done.stdout)
    assert total is not None, done.stdout
    assert int(total[1]) > 0
    assert int(total[2]) > 0
