"""The reprocess policy: which users to reprocess now, which later, and which to alert on instead.

`POST /users/{id}/reprocessLicenseAssignment` re-runs *all* of one user's group-based
assignments. Entra does not retry on its own when seats become free, when a usage location is
corrected or when a conflicting license goes away, so License Guard does, but only when the
cause may be gone: a reprocess of an unchanged cause fails the same way and spends Graph's
write budget for nothing. `decide_reprocess` turns findings, the user's reprocess ledger and a
few tenant facts into one decision per user. Pure: no I/O, no clock (`TenantFacts.now`).

This module holds the policy itself: the gates, the per-cause judgement and
`decide_reprocess`. Apart: which codes qualify and the cause each finding stands for
(`reprocess_causes`), the records it decides with (`reprocess_plan`), the reading of a user's
ledger (`reprocess_ledger`), the mass-failure and seat brakes (`reprocess_brakes`), how a
user's verdicts become one decision (`reprocess_verdicts`), and what its alerts tell a person
to fix (`reprocess_fixes`).

Policy
======

1. *Candidates.* Only findings about a user (`Finding.user_id` set) that are not `info`.
   CountViolation, MutuallyExclusiveViolation, ProhibitedInUsageLocationViolation,
   PendingGroupAssignment, StaleGroupAssignment and PlanMismatch may be fixed by a reprocess.
   UniquenessViolation, DependencyViolation, Other and error codes we do not know are never
   fixed by a reprocess alone: AlertInstead, saying what to fix first. So is any error on a
   *direct* assignment (no group): reprocessLicenseAssignment re-runs group-based assignments
   only.

2. *Causes and evidence.* Each finding becomes a `Cause`: code, SKU, group, and the evidence
   the fix depends on (`reprocess_causes` says which, per code). `Cause.key` leaves the
   evidence out.

3. *Gates* - when a cause qualifies for a reprocess at all:

   * CountViolation: the SKU, and each its group waits for (``seatsOf=``), has free seats
     (`TenantFacts.free_seats`: enabled - consumed - promised; missing: 0); not the SKU itself
     when the user holds it through another path (``heldElsewhere``: no second seat). Else
     AlertInstead.
   * Pending/Stale/PlanMismatch: the group's licenseProcessingState is ProcessingComplete.
     Otherwise RetryLater: waiting for Entra is normal, not an alert. The wait is as long as
     the gate was seen closed so far, backoff_base at least and processing_wait_cap at most
     (15 min doubling to 4 h): a group stuck processing is not re-read 96 times a day per user.
     An unknown state (None or a group missing from `group_processing`) waits too.
   * Usage location / mutual exclusion: the evidence *changed*: the latest ledger entry of
     this key (attempt or observation) has different evidence. On first sight there is no
     sign of a change, so AlertInstead (a human fixes the location or chooses the winning
     license); the alert asks the caller to record an observation, so the fix is seen as a
     change later. During a planned swap between groups a conflict clears when the user
     leaves the old group: Entra reprocesses on membership changes itself, and at most one
     reprocess follows here.
   * Except a MutuallyExclusiveViolation with ``liftedConflict=`` evidence (a pair Microsoft now
     allows, Exchange Online Plan 1 and 2): Microsoft says to reprocess it. Rules 4-8 apply.

4. *Never twice for an unchanged cause.* If the ledger holds a reprocess attempt with an equal
   Cause (key and evidence), the cause is not reprocessed again: AlertInstead ("already
   reprocessed for this cause on <date>; needs a fix").

5. *Backoff.* A qualifying cause whose key has n earlier attempts (with other evidence) waits
   until last attempt + min(backoff_base * 2**(n-1), backoff_cap): RetryLater until then.

6. *Seats.* Per SKU at most `free_seats[sku]` users are reprocessed for CountViolation (a
   cause counts toward the SKUs it needs a seat of: `findings.seat_skus`): the
   oldest errors first (`Finding.since` ascending, unknown last, then user id). The rest
   RetryLater at now + backoff_base ("waiting for a free seat"). A user reprocessed for
   another cause re-runs its CountViolation too; the budget counts only users chosen for
   their seat shortage.

7. *Mass failures.* When more than `group_threshold` users share one group + SKU + code among
   the candidates (group-based, reprocessable codes; findings still waiting for their group
   to finish processing do not count), one `GroupAlert` replaces the per-user decisions for
   those findings. A mass failure has one cause - the group's configuration, a plan conflict
   built into it, or the SKU's seats - which one fix in one place repairs (then the group's
   users are reprocessed in the Microsoft 365 admin center, `findings.GROUP_REPROCESS`; Graph
   v1.0 has no group reprocess); reprocessing
   thousands of users one by one would spend Graph's write budget for nothing.

8. *One decision per user.* ReprocessNow if any cause qualifies (listing the causes it is
   for, and with `retry_at`, the earliest not_before, when others wait), else RetryLater (the
   earliest not_before) if any cause waits, else AlertInstead.
   Users are ordered by their oldest finding (`since`, unknown last), then user id; causes by
   key. The plan does not depend on the order of the findings.

Ledger contract (the caller follows it)
=======================================

The history is a per-user ledger of `Attempt` entries (`Mapping[user_id, Sequence[Attempt]]`,
any order; the policy sorts by `at`). An entry is either a reprocess attempt
(``reprocessed=True``) or an observation (``reprocessed=False``): a cause the policy saw and
did not reprocess. Both carry the exact `Cause` the decision named. The caller must:

* after a *successful* POST for a `ReprocessNow`, append ``decision.attempts(at)`` (one
  attempt per cause, at = the POST's time). A failed POST (throttled, 5xx) records nothing:
  enqueue the user again.
* append every observation the plan asks for, ``plan.observations()`` (each decision's and
  group alert's `observe`, stamped `facts.now`), whether or not an alert is sent. The policy
  only asks for an observation when the latest entry of that key has different evidence, so
  the ledger grows with changes, not with runs.
* keep entries long enough for the longest backoff (`backoff_cap`, 24 h) at least; dropping
  older entries forgets "already reprocessed" and lets one more attempt through.
* re-enqueue RetryLater users at `not_before`, and ReprocessNow users with a `retry_at` then.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from shared.core import findings as codes
from shared.core.findings import INFO, Finding
from shared.core.reprocess_brakes import apply_seat_budget, group_alert, mass_failures
from shared.core.reprocess_causes import (
    CHANGE_GATED,
    NO_FREE_SEATS,
    PROCESSING_COMPLETE,
    PROCESSING_GATED,
    REPROCESSABLE,
    SEATS_FREE,
    finding_cause,
    policy_cause,
)
from shared.core.reprocess_fixes import FIX_FIRST, human_fix, seats_fix_of
from shared.core.reprocess_ledger import Ledger, since_key
from shared.core.reprocess_plan import (
    AlertInstead,
    Attempt,
    Cause,
    Decision,
    GroupAlert,
    ReprocessNow,
    ReprocessPlan,
    RetryLater,
    TenantFacts,
)
from shared.core.reprocess_verdicts import ALERT, LATER, NOW, Candidate, Verdict, decide_user

__all__ = [
    "CHANGE_GATED",
    "FIX_FIRST",
    "NO_FREE_SEATS",
    "PROCESSING_COMPLETE",
    "PROCESSING_GATED",
    "REPROCESSABLE",
    "SEATS_FREE",
    "AlertInstead",
    "Attempt",
    "Cause",
    "Decision",
    "GroupAlert",
    "ReprocessNow",
    "ReprocessPlan",
    "RetryLater",
    "TenantFacts",
    "decide_reprocess",
    "policy_cause",
]


def _date(at: datetime) -> str:
    return at.isoformat(timespec="minutes")


def _candidates(
    findings: Iterable[Finding], ledgers: Mapping[str, Ledger], facts: TenantFacts
) -> list[Candidate]:
    seen: dict[tuple[str, str], Candidate] = {}
    for finding in findings:
        user_id = finding.user_id
        if user_id is None or finding.severity == INFO:
            continue
        cause = finding_cause(finding, ledgers[user_id], facts)
        candidate = Candidate(user_id, finding, cause)
        previous = seen.get((user_id, cause.key))
        if previous is None or _candidate_order(candidate) < _candidate_order(previous):
            seen[(user_id, cause.key)] = candidate
    return sorted(seen.values(), key=_candidate_order)


def _candidate_order(
    c: Candidate,
) -> tuple[str, str, tuple[int, datetime], tuple[str, ...]]:
    return (c.user_id, c.cause.key, since_key(c.finding.since), c.cause.evidence)


def _waits_for_processing(candidate: Candidate, facts: TenantFacts) -> bool:
    return (
        candidate.cause.code in PROCESSING_GATED
        and facts.group_processing.get(candidate.cause.group_id or "") != PROCESSING_COMPLETE
    )


def _counts_toward_mass_failure(candidate: Candidate, facts: TenantFacts) -> bool:
    """Group-based, reprocessable and not waiting for its group: counts toward a mass failure."""
    return (
        candidate.cause.code in REPROCESSABLE
        and candidate.cause.group_id is not None
        and not _waits_for_processing(candidate, facts)
    )


def _judge(candidate: Candidate, ledger: Ledger, facts: TenantFacts) -> Verdict:
    """One cause's verdict before the seat budget: reprocess, wait, or alert."""
    cause = candidate.cause
    code = cause.code
    if code not in REPROCESSABLE:
        fix = FIX_FIRST.get(code) or (
            f"unknown error {code}: find the reason in the audit log ('Change user license') "
            "and fix it first"
        )
        return Verdict(cause, ALERT, fix)
    if cause.group_id is None:
        return Verdict(
            cause,
            ALERT,
            f"{code} on a direct assignment of {cause.sku_id}: a reprocess re-runs group-based "
            "assignments only; fix the cause and assign the license again",
        )
    done = [a for a in ledger.attempts(cause.key) if a.cause == cause]
    if done:
        return Verdict(
            cause,
            ALERT,
            f"already reprocessed for this cause ({code}) on {_date(done[-1].at)}; needs a fix"
            + (f": {human_fix(cause, candidate.finding)}" if code in CHANGE_GATED else ""),
            observe=True,
        )
    closed = _closed_gate(candidate, ledger, facts)
    if closed is not None:
        return closed
    attempts = ledger.attempts(cause.key)
    if attempts:
        not_before = attempts[-1].at + facts.backoff(len(attempts))
        if facts.now < not_before:
            return Verdict(
                cause,
                LATER,
                f"{code} was reprocessed {len(attempts)} time(s), last on "
                f"{_date(attempts[-1].at)}; backing off until {_date(not_before)}",
                not_before,
            )
    seats = codes.seat_skus(candidate.finding) if code == codes.COUNT_VIOLATION else None
    return Verdict(cause, NOW, _why_now(cause, ledger, facts), seats=seats)


def _closed_gate(candidate: Candidate, ledger: Ledger, facts: TenantFacts) -> Verdict | None:
    cause = candidate.cause
    code = cause.code
    if code == codes.COUNT_VIOLATION and cause.evidence == (NO_FREE_SEATS,):
        short = [  # the group's other products when this one has seats (all-or-none)
            s for s in codes.seat_skus(candidate.finding) if facts.free_seats.get(s, 0) <= 0
        ]
        return Verdict(
            cause,
            ALERT,
            f"no free seats of {', '.join(short)}: {seats_fix_of(((s, s) for s in short), facts)}"
            "; License Guard reprocesses once seats are free",
            observe=True,
        )
    if code in PROCESSING_GATED and facts.group_processing.get(cause.group_id or "") != (
        PROCESSING_COMPLETE
    ):
        state = facts.group_processing.get(cause.group_id or "") or "unknown"
        waited = ledger.unchanged_for(cause, facts.now)
        return Verdict(
            cause,
            LATER,
            f"group {cause.group_id} is still processing (licenseProcessingState={state})",
            facts.now + min(max(waited, facts.backoff_base), facts.processing_wait_cap),
            observe=True,
        )
    if code in CHANGE_GATED and not _lifted(cause):
        latest = ledger.latest(cause.key)
        if latest is None or latest.cause.evidence == cause.evidence:
            since = "first seen now" if latest is None else f"unchanged since {_date(latest.at)}"
            return Verdict(
                cause,
                ALERT,
                f"{human_fix(cause, candidate.finding)} ({since})",
                observe=True,
            )
    return None


def _lifted(cause: Cause) -> bool:
    """A plan conflict only pairs Microsoft has lifted explain: Microsoft says to reprocess it."""
    return cause.code == codes.MUTUALLY_EXCLUSIVE and any(
        e.startswith(codes.LIFTED_CONFLICT) for e in cause.evidence
    )


def _why_now(cause: Cause, ledger: Ledger, facts: TenantFacts) -> str:
    if cause.code == codes.COUNT_VIOLATION:
        free = facts.free_seats.get(cause.sku_id or "", 0)
        return f"{free} free seat(s) of {cause.sku_id}: the seat shortage may be over"
    if cause.code in PROCESSING_GATED:
        return (
            f"group {cause.group_id} finished processing and {cause.code} persists "
            f"for {cause.sku_id}"
        )
    if _lifted(cause):
        return (
            f"{cause.code} for {cause.sku_id} between plans Microsoft now allows together; "
            "Microsoft says to reprocess it"
        )
    latest = ledger.latest(cause.key)
    before = ", ".join(latest.cause.evidence) if latest else ""
    return (
        f"{cause.code}: the evidence changed ({before or 'none'} -> "
        f"{', '.join(cause.evidence) or 'none'}); the cause may be fixed"
    )


# --------------------------------------------------------------------------- entry point


def decide_reprocess(
    findings: Iterable[Finding],
    history: Mapping[str, Sequence[Attempt]],
    facts: TenantFacts,
) -> ReprocessPlan:
    """Decide, per user, whether to reprocess now, retry later or alert instead (see module)."""
    findings = list(findings)
    user_ids = {f.user_id for f in findings if f.user_id is not None}
    ledgers = {u: Ledger(history.get(u, ())) for u in user_ids}
    candidates = _candidates(findings, ledgers, facts)

    eligible = [c for c in candidates if _counts_toward_mass_failure(c, facts)]
    mass = mass_failures(eligible, facts.group_threshold, facts.failing_elsewhere)
    groups = tuple(group_alert(b, members, ledgers, facts) for b, members in mass.items())
    in_group_alert = {(m.user_id, m.cause.key) for members in mass.values() for m in members}

    verdicts: dict[str, list[Verdict]] = defaultdict(list)
    oldest: dict[str, tuple[int, datetime]] = {}
    count_since: dict[tuple[str, str], str | None] = {}
    for c in candidates:
        if (c.user_id, c.cause.key) in in_group_alert:
            continue
        verdicts[c.user_id].append(_judge(c, ledgers[c.user_id], facts))
        order = since_key(c.finding.since)
        oldest[c.user_id] = min(oldest.get(c.user_id, order), order)
        if c.cause.code == codes.COUNT_VIOLATION:
            seat = (c.user_id, c.cause.sku_id or "")
            if seat not in count_since or since_key(c.finding.since) < since_key(count_since[seat]):
                count_since[seat] = c.finding.since
    apply_seat_budget(verdicts, count_since, facts)

    users = {
        u: decide_user(u, verdicts[u], ledgers[u])
        for u in sorted(verdicts, key=lambda u: (oldest[u], u))
    }
    failing = Counter(key for key, _ in {(c.cause.key, c.user_id) for c in eligible})
    return ReprocessPlan(MappingProxyType(users), groups, facts.now, failing)
