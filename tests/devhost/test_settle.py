"""`settle` waits for graphsim and the dev host to go quiet; one that never does is an error,
not a return: the chaos and soak checks would otherwise compare a state the service has not
finished (and pass or fail for the wrong reason)."""

from __future__ import annotations

from typing import Any

import pytest

from devhost.stack import settle


class BusyGraph:
    """graphsim's control client, as a run that keeps producing notifications leaves it."""

    def __init__(self, quiet_after: int | None) -> None:
        self.statuses, self.quiet_after = 0, quiet_after

    def drain(self, settle: bool = False) -> None:
        pass

    def status(self) -> dict[str, Any]:
        self.statuses += 1
        quiet = self.quiet_after is not None and self.statuses >= self.quiet_after
        return {"pendingJobs": 0, "pendingNotifications": 0 if quiet else 3}


class IdleHost:
    def wait_idle(self, timeout: float, scheduled_ok: bool) -> None:
        pass

    def fire_timer(self, name: str) -> None:
        pass


def test_a_stack_that_never_goes_quiet_raises() -> None:
    sim = BusyGraph(quiet_after=None)
    with pytest.raises(RuntimeError, match="not quiet after 5 rounds: 3 notification"):
        settle(IdleHost(), sim)  # type: ignore[arg-type]
    assert sim.statuses == 10  # two reads a round, five rounds


def test_a_stack_that_goes_quiet_returns() -> None:
    sim = BusyGraph(quiet_after=6)  # the third round's second read
    settle(IdleHost(), sim)  # type: ignore[arg-type]
    assert sim.statuses == 6
