"""A run's result reports the counts its checkpoint kept."""

from __future__ import annotations

from shared.service.reconcile.run_state import Counters, ReconcileResult


def test_a_finished_runs_result_takes_every_count_its_checkpoint_settled() -> None:
    counters = Counters(
        pages=3, users=23, new_findings=4, resolved_findings=2, queued=1, would_reprocess=5
    )
    result = ReconcileResult("2026-12-03-run", "2026-12-03", "done")

    result.add(counters)

    assert (
        result.users,
        result.new_findings,
        result.resolved_findings,
        result.queued,
        result.would_reprocess,
    ) == (23, 4, 2, 1, 5)
