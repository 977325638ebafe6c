"""A cause's verdict, and how one user's verdicts become one decision.

The policy (`shared.core.reprocess`) judges each cause to a `Verdict`: reprocess now, retry
later or alert instead; the brakes may turn a "now" into a "later"; `decide_user` folds what
remains into one `Decision` for the user. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.core.findings import Finding
from shared.core.reprocess_ledger import Ledger, needs_record
from shared.core.reprocess_plan import AlertInstead, Cause, Decision, ReprocessNow, RetryLater

NOW = "now"
LATER = "later"
ALERT = "alert"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One cause's verdict: `action` is NOW, LATER or ALERT; `observe` asks for a ledger entry."""

    cause: Cause
    action: str
    reason: str
    not_before: datetime | None = None
    observe: bool = False
    seats: tuple[str, ...] | None = None
    """A CountViolation reprocess decided for now: the SKUs it takes a seat of
    (`findings.seat_skus`, none for a product held elsewhere whose group's others have seats);
    the seat budget counts it toward each. None: its own SKU."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A user's finding the policy considers, with the cause it stands for."""

    user_id: str
    finding: Finding
    cause: Cause


def decide_user(user_id: str, verdicts: list[Verdict], ledger: Ledger) -> Decision:
    ordered = sorted(verdicts, key=lambda v: (v.cause.key, v.cause.evidence))
    observe = tuple(v.cause for v in ordered if v.observe and needs_record(ledger, v.cause))
    now = [v for v in ordered if v.action == NOW]
    later = [v for v in ordered if v.action == LATER]
    not_before = min((v.not_before for v in later if v.not_before is not None), default=None)
    if now:
        return ReprocessNow(user_id, _causes(now), _reasons(now), observe, retry_at=not_before)
    if later and not_before is not None:
        return RetryLater(user_id, _causes(later), _reasons(later), observe, not_before=not_before)
    return AlertInstead(user_id, _causes(ordered), _reasons(ordered), observe)


def _causes(verdicts: list[Verdict]) -> tuple[Cause, ...]:
    return tuple(v.cause for v in verdicts)


def _reasons(verdicts: list[Verdict]) -> str:
    return "; ".join(dict.fromkeys(v.reason for v in verdicts))
