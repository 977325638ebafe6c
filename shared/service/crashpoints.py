"""Named crash points between the steps of every handler: where a test makes the worker "die".

Each handler calls `crash_point(svc, "<handler>.<step>")` between two steps that change
something (a table write, a queue send, a Graph write). In production `Services.crash_points`
is `NO_CRASHES` (declared with the `CrashPoints` protocol in `shared.service.services`) and the
call does nothing. The reliability tests register a recorder instead
(like any other fake, through `Services`), raise at one named point, deliver the message again
and compare the end state with a run that did not crash (docs/reliability.md).

`STEPS` is the registry: per handler, its points in the order a clean run passes them. A name
not declared here is a programming error (KeyError), so the registry cannot fall behind the
code; the harness test fails when a declared point is never reached, or when a handler writes
twice without a crash point in between (a new step without one).
"""

from __future__ import annotations

from typing import Final

from shared.service.services import Services

STEPS: Final[dict[str, tuple[str, ...]]] = {
    "intake": ("intake.after_vet", "intake.after_send"),
    "groups": (
        "groups.after_classify",
        "groups.after_delta_round",
        "groups.after_recompute_sent",
        "groups.after_members_saved",
        "groups.after_nested_findings",
        "groups.after_delta_link_saved",
        "groups.after_liveness",
    ),
    "recompute": (
        "recompute.after_read",
        "recompute.after_ledger_queued",
        "recompute.after_reprocess_sent",
        "recompute.after_retry_sent",
        "recompute.after_observations",
        "recompute.after_findings",
        "recompute.after_gone",
    ),
    "reprocess": (
        "reprocess.after_claim",
        "reprocess.after_brake",
        "reprocess.after_call",
        "reprocess.after_settle",
    ),
    "recheck": ("recheck.after_refresh", "recheck.after_send"),
    "reconcile": (
        "reconcile.after_groups",
        "reconcile.after_page_findings",
        "reconcile.after_page_parts",
        "reconcile.after_page_checkpoint",
        "reconcile.after_sku_findings",
        "reconcile.after_gone",
        "reconcile.after_reports",
        "reconcile.after_summary_sent",
        "reconcile.after_done",
    ),
    "mail": (
        "mail.after_pending",
        "mail.after_draft",
        "mail.after_draft_recorded",
        "mail.after_send",
    ),
    "digest": ("digest.after_mark",),
    "immediate": ("immediate.after_mark",),
    "keeper": (
        "keeper.after_lease",
        "keeper.after_sweep_owed",
        "keeper.after_create",
        "keeper.after_remember",
        "keeper.after_replaced_deleted",
        "keeper.after_sweep_sent",
        "keeper.after_renew",
    ),
}

DECLARED: Final[frozenset[str]] = frozenset(p for points in STEPS.values() for p in points)


def crash_point(svc: Services, name: str) -> None:
    """Mark the boundary between two steps; `name` must be declared in `STEPS`."""
    if name not in DECLARED:
        raise KeyError(f"crash point {name!r} is not declared in shared.service.crashpoints")
    svc.crash_points.reached(name)
