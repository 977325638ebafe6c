"""The nightly run stops itself after `RUN_BUDGET` and resumes at the next firing; that only
works while the host's `functionTimeout` is longer. Flex Consumption's default (30 minutes) is
what made it so, unstated: host.json now says it, and this test ties the two."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from shared.service.reconcile.nightly import RUN_BUDGET
from tests.python_run import ROOT

# What the nightly needs after its budget: writing its checkpoint and the page in flight.
MARGIN = timedelta(minutes=2)


def _timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", text)
    assert match, f"functionTimeout {text!r} is not hh:mm:ss"
    hours, minutes, seconds = (int(g) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_host_json_gives_the_nightly_run_more_than_its_budget() -> None:
    host = json.loads((ROOT / "host.json").read_text())

    assert "functionTimeout" in host, "the nightly's budget relies on the plan's default"
    assert _timespan(host["functionTimeout"]) >= RUN_BUDGET + MARGIN
