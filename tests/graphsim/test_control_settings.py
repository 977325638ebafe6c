"""What /_sim/faults, /_sim/throttle and /_sim/notifications report: every setting under its
JSON key, in a fixed order, before and after a partial update (unnamed settings keep theirs)."""

from __future__ import annotations

import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def test_faults_show_their_settings_and_keep_the_unnamed_ones(sim: Harness) -> None:
    faults = sim.sim.faults
    faults.configure({"rate429": 1, "next": ["503", "none"], "retryAfter": "4", "seed": 9})
    assert list(faults.describe().items()) == [
        ("rate429", 1.0),
        ("rate503", 0.0),
        ("resetRate", 0.0),
        ("applyResetRate", 0.0),
        ("apply503Rate", 0.0),
        ("writesOnly", False),
        ("next", ["503", "none"]),
        ("emptyFirstPages", []),
        ("stuckPages", []),
        ("endlessPages", []),
        ("cyclingPages", []),
        ("latencyMs", 0.0),
        ("latencyRate", 1.0),
        ("retryAfter", 4),
        ("seed", 9),
    ]
    faults.configure({"writesOnly": 1, "next": None})
    shown = faults.describe()
    assert (shown["writesOnly"], shown["next"], shown["rate429"]) == (True, [], 1.0)
    shown["next"].append("429")
    assert faults.scripted == []


async def test_an_unknown_scripted_fault_is_refused_after_the_keys_before_it(sim: Harness) -> None:
    faults = sim.sim.faults
    with pytest.raises(ValueError, match="unknown fault"):
        faults.configure({"rate503": 0.5, "next": ["x"], "latencyMs": 10})
    assert (faults.rate_503, faults.scripted, faults.latency_ms) == (0.5, [], 0.0)


async def test_throttle_shows_the_budget_in_force(sim: Harness) -> None:
    throttle = sim.sim.throttle
    assert list(throttle.describe().items()) == [
        ("enabled", True),
        ("budget", 3500),
        ("writeBudget", 3000),
        ("windowSeconds", 10.0),
        ("writeWindowSeconds", 150.0),
        ("reportsBudget", 5),
        ("reportsWindowSeconds", 10.0),
        ("clock", "real"),
    ]
    throttle.configure({"budget": "7", "windowSeconds": 2, "clock": "sim"})
    assert throttle.describe() == {
        "enabled": True,
        "budget": 7,
        "writeBudget": 3000,
        "windowSeconds": 2.0,
        "writeWindowSeconds": 150.0,
        "reportsBudget": 5,
        "reportsWindowSeconds": 10.0,
        "clock": "sim",
    }
    throttle.configure({"budget": None})
    assert throttle.describe()["budget"] == 3500


async def test_notifications_show_their_settings(sim: Harness) -> None:
    notifier = sim.sim.notifier
    notifier.configure({"dropRate": "0.25", "backoffSeconds": [], "lifecycleLeadMinutes": 5})
    assert list(notifier.describe().items()) == [
        ("enabled", True),
        ("dropRate", 0.25),
        ("duplicateRate", 0.0),
        ("maxAttempts", 4),
        ("backoffSeconds", [0.0]),
        ("lifecycleLeadMinutes", 5.0),
    ]
