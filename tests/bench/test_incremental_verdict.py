"""bench/incremental.py's verdict: requests per change against the target, on changes that went
through. A change whose notification was lost, or whose recompute did nothing, costs fewer Graph
requests: with the recompute turned into a no-op the benchmark printed 1.00 request per change,
"OK", and exited 0."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.incremental import percentile, verdict

GONE_THROUGH = Counter({"graph_notifications": 1, "group_changes": 1, "recompute_users": 1})


def change(**changes: Any) -> dict[str, Any]:
    row = {
        "requests": Counter({"POST /$batch": 3, "GET /groups/delta": 1, "GET /subscribedSkus": 1}),
        "succeeded": GONE_THROUGH,
        "stored": True,
        "read": True,
    }
    return row | changes


def test_changes_seen_through_within_the_target_pass() -> None:
    assert verdict([change(), change()], []) == []


def test_a_change_the_recompute_never_read_fails_though_it_was_cheap() -> None:
    cheap = Counter({"GET /groups/delta": 1})

    problems = verdict([change(), change(requests=cheap, read=False)], [])

    assert problems == [
        "1 of 2 changes not seen through (graph_notifications, group_changes, "
        "recompute_users, the member row, the user read in a $batch)"
    ]


def test_a_change_without_its_recompute_or_member_row_fails() -> None:
    no_recompute = GONE_THROUGH - Counter({"recompute_users": 1})

    assert verdict([change(succeeded=no_recompute)], []) != []
    assert verdict([change(stored=False)], []) != []


def test_over_the_target_failed_invocations_or_nothing_measured_fail() -> None:
    dear = Counter({"POST /$batch": 5})

    assert verdict([change(requests=dear)], []) == ["5.00 requests per change"]
    assert verdict([change()], ["an invocation"]) == ["1 failed invocations"]
    assert verdict([], []) == ["no change measured"]


def test_percentiles_are_nearest_rank() -> None:
    """The p95 of the 20 changes the benchmark makes by default is the 19th value, not the
    maximum; the p50 of 20 the 10th."""
    twenty = [float(n) for n in range(1, 21)]

    assert percentile(twenty, 95) == 19.0
    assert percentile(twenty, 50) == 10.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert percentile([5.0], 95) == 5.0
