"""`make reliability`'s verdicts (bench/reliability.py): a line passes only when what it guards
held AND the check did its work. A chaos run without faults, or whose calm run found, reprocessed
and mailed nothing, compares nothing; a fuzz run whose handshakes were not echoed, a soak whose
keeper failed, each failed their own script but passed the table."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bench.reliability import chaos_line, fuzz_line, main, twice_line
from bench.reliability_fuzz import failures
from bench.reliability_soak import soak_line


def chaos_run(*, faults: int = 40, empty: bool = False) -> dict[str, Any]:
    if empty:
        return {
            "findings": [], "reprocessed": Counter(), "mails": Counter(),
            "mailKinds": Counter(), "faults": faults,
        }  # fmt: skip
    mails = Counter({"digest-1": 1, "dataloss-2": 1})
    return {
        "findings": [("user-1", "CountViolation")],
        "reprocessed": Counter({"user-1": 1}),
        "mails": mails,
        "mailKinds": Counter(i.split("-")[0] for i in mails),
        "faults": faults,
    }


def test_chaos_passes_a_storm_that_ends_as_the_calm_run() -> None:
    line = chaos_line(chaos_run(faults=0), [chaos_run(), chaos_run()])

    assert line.ok, line.figures


def test_chaos_fails_when_the_calm_run_did_nothing_to_compare() -> None:
    """An empty tenant, alert mail not set up, a sync that moved nothing: every stormy run
    equals the calm one trivially."""
    line = chaos_line(chaos_run(faults=0, empty=True), [chaos_run(empty=True)])

    assert not line.ok
    assert "0 open" in line.figures
    assert "(0 users)" in line.figures


def test_chaos_fails_when_a_seed_injected_no_fault() -> None:
    line = chaos_line(chaos_run(faults=0), [chaos_run(), chaos_run(faults=0)])

    assert not line.ok
    assert "(1 seeds none)" in line.figures


def test_chaos_still_fails_on_a_duplicate_reprocess() -> None:
    twice = chaos_run() | {"reprocessed": Counter({"user-1": 2})}

    assert not chaos_line(chaos_run(faults=0), [twice]).ok


def fuzz_result(**changes: float) -> dict[str, float]:
    result = {
        "requests": 500.0, "status_5xx": 0.0, "forged_enqueued": 0.0, "genuine_lost": 0.0,
        "handshake_mismatch": 0.0, "p99_ms": 120.0, "log_lines": 380.0,
    }  # fmt: skip
    return result | changes


def test_fuzz_passes_a_clean_run() -> None:
    assert fuzz_line(fuzz_result(), failures).ok


def test_fuzz_fails_when_a_validation_token_is_not_echoed() -> None:
    """Graph creates no subscription whose handshake answer is not its token: the fuzz script
    fails on it (FAIL_IF_OVER), and the table line used to pass it."""
    line = fuzz_line(fuzz_result(handshake_mismatch=3), failures)

    assert not line.ok
    assert "3 handshake mismatches" in line.figures


def test_fuzz_fails_when_the_service_logs_a_line_per_item() -> None:
    """One summary line per request at most: a line per item of a 2,000-item batch floods the
    logs (and Application Insights' bill)."""
    line = fuzz_line(fuzz_result(log_lines=4500.0), failures)

    assert not line.ok
    assert "4500 log lines" in line.figures


def test_fuzz_fails_when_no_log_line_was_counted() -> None:
    """`make reliability` ran the fuzz with logging disabled: 0 lines, the limit vacuous."""
    assert not fuzz_line(fuzz_result(log_lines=0.0), failures).ok


def test_fuzz_fails_when_nothing_was_sent() -> None:
    assert not fuzz_line(fuzz_result(requests=0, p99_ms=0), failures).ok


QUICK = [4.0] * 10


def test_soak_passes_quick_recreations_and_no_lapse() -> None:
    _, figures, _, ok = soak_line(90, 0, QUICK, 40, 0, 30, ["u"] * 30)

    assert ok, figures


def test_soak_fails_when_the_keeper_fails() -> None:
    """Lifecycle events re-create the subscription on their own: a keeper failing on every
    run left no gap, and passed."""
    _, figures, target, ok = soak_line(90, 0, QUICK, 40, 360, 30, ["u"] * 30)

    assert not ok
    assert "360 keeper runs failed" in figures
    assert "0 keeper failures" in target


def test_soak_fails_one_slow_recreation_among_quick_ones() -> None:
    """The target is a minute per removal: a 5-minute re-creation is not made good by nine
    quick ones (the total used to be compared with a minute times the removals)."""
    _, figures, _, ok = soak_line(90, 0, [300.0] + [4.0] * 9, 40, 0, 30, ["u"] * 30)

    assert not ok
    assert "slowest 300 s" in figures


def test_soak_fails_a_lapse_or_a_missed_change_or_nothing_done() -> None:
    assert not soak_line(90, 1, QUICK, 40, 0, 30, ["u"] * 30)[3]
    assert not soak_line(90, 0, QUICK, 40, 0, 29, ["u"] * 30)[3]
    assert not soak_line(1, 0, [], 0, 0, 0, [])[3]


FIRST_NIGHT = [("graph", "reprocess"), ("graph", "createDraft"), ("graph", "sendDraft")]


def test_reconcile_twice_passes_a_second_run_that_repeats_nothing() -> None:
    line = twice_line(FIRST_NIGHT, [("write", "findings")], "done")

    assert line.ok, line.figures


def test_reconcile_twice_fails_when_the_first_run_did_nothing_to_repeat() -> None:
    """Alert mail not set up or an empty world: the second run repeats nothing trivially."""
    line = twice_line([("write", "findings")], [], "done")

    assert not line.ok
    assert line.figures.startswith("first run 0 Graph writes, 0 mails")


def test_reconcile_twice_fails_on_a_second_mail_or_message() -> None:
    assert not twice_line(FIRST_NIGHT, [("graph", "sendDraft")], "done").ok
    assert not twice_line(FIRST_NIGHT, [("send", "reprocess-user")], "done").ok
    assert not twice_line(FIRST_NIGHT, [], "stopped").ok


def test_an_unknown_check_name_is_refused_before_anything_runs() -> None:
    """`--only crashpoints` ran no check and crashed on the empty table; an empty table would
    have passed `all([])`."""
    with pytest.raises(SystemExit) as refused:
        main(["--only", "crashpoints"])

    assert refused.value.code == 2
