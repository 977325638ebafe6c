"""Which findings a reprocess may fix, and the `Cause` each finding stands for.

Which codes a reprocess may fix (`REPROCESSABLE`) and which gates they wait on
(`PROCESSING_GATED`, `CHANGE_GATED`): the policy's rules are in `reprocess`. Each finding
becomes a `Cause`: code, SKU, group, and the evidence the fix depends on. `Cause.key` leaves
the evidence out.

* CountViolation: ``("freeSeats=0",)`` while the SKU has no free seats (or one its group
  waits for, ``seatsOf=``; not the SKU itself when the user holds it elsewhere,
  ``heldElsewhere``: `findings.seat_skus`); otherwise
  ``("freeSeats>0", "after=<T>")`` where T is the time of the latest ledger entry of this
  key recorded while seats were short (``after=none`` if there is none). Free seats appear
  and vanish with every joiner and leaver, so the evidence is not a seat count: what a
  reprocess depends on is seats appearing *after a shortage*. One shortage, one attempt;
  a new shortage seen by the policy (and recorded, see the ledger contract in `reprocess`)
  allows the next.
* PendingGroupAssignment, StaleGroupAssignment, PlanMismatch: the group's
  licenseProcessingState, ``("licenseProcessingState=<state>",)``, and when the state is
  ProcessingComplete also ``"after=<T>"``, T being the latest entry of this key recorded
  while the group was still processing. One completed processing run, one attempt.
* ProhibitedInUsageLocationViolation: the finding's evidence (``usageLocation=DE``).
* MutuallyExclusiveViolation: the finding's evidence (the user's other active paths).
* For both, not ``failedWith=`` (`findings.watched_evidence`): the product at fault, which
  the alert names, comes from other users and the conflicts table, not from the fix.

Pure, as `reprocess` (the policy that decides with them).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core import findings as codes
from shared.core.findings import Finding
from shared.core.reprocess_ledger import Ledger
from shared.core.reprocess_plan import Attempt, Cause, TenantFacts

PROCESSING_COMPLETE = "ProcessingComplete"
SEATS_FREE = "freeSeats>0"
NO_FREE_SEATS = "freeSeats=0"

REPROCESSABLE = frozenset(
    {
        codes.COUNT_VIOLATION,
        codes.MUTUALLY_EXCLUSIVE,
        codes.PROHIBITED_IN_USAGE_LOCATION,
        codes.PENDING_GROUP_ASSIGNMENT,
        codes.STALE_GROUP_ASSIGNMENT,
        codes.PLAN_MISMATCH,
    }
)
PROCESSING_GATED = frozenset(
    {codes.PENDING_GROUP_ASSIGNMENT, codes.STALE_GROUP_ASSIGNMENT, codes.PLAN_MISMATCH}
)
CHANGE_GATED = frozenset({codes.MUTUALLY_EXCLUSIVE, codes.PROHIBITED_IN_USAGE_LOCATION})


def finding_cause(finding: Finding, ledger: Ledger, facts: TenantFacts) -> Cause:
    code, sku_id, group_id = finding.code, finding.sku_id, finding.group_id
    key = Cause(code, sku_id, group_id).key
    if code == codes.COUNT_VIOLATION:
        if any(facts.free_seats.get(s, 0) <= 0 for s in codes.seat_skus(finding)):
            return Cause(code, sku_id, group_id, (NO_FREE_SEATS,))
        return Cause(code, sku_id, group_id, (SEATS_FREE, ledger.closed_since(key, SEATS_FREE)))
    if code in PROCESSING_GATED:
        state = facts.group_processing.get(group_id or "")
        token = f"licenseProcessingState={state or 'unknown'}"
        if state != PROCESSING_COMPLETE:
            return Cause(code, sku_id, group_id, (token,))
        return Cause(code, sku_id, group_id, (token, ledger.closed_since(key, token)))
    return Cause(code, sku_id, group_id, codes.watched_evidence(finding))


def policy_cause(finding: Finding, history: Sequence[Attempt], facts: TenantFacts) -> Cause:
    """The cause, with the evidence the policy decides on, a finding stands for now: what a
    reprocess made elsewhere (an admin's) records, so the policy reads it as its own attempt."""
    return finding_cause(finding, Ledger(history), facts)
