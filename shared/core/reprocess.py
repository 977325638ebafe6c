"""The reprocess policy: which users to reprocess now, which later, and which to alert on instead.

`POST /users/{id}/reprocessLicenseAssignment` re-runs *all* of one user's group-based
assignments. Entra does not retry on its own when seats become free, when a usage location is
corrected or when a conflicting license goes away, so License Guard does, but only when the
cause may be gone: a reprocess of an unchanged cause fails the same way and spends Graph's
write budget for nothing. `decide_reprocess` turns findings, the user's reprocess ledger and a
few tenant facts into one decision per user. Pure: no I/O, no clock (`TenantFacts.now`).

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
   the fix depends on. `Cause.key` leaves the evidence out.

   * CountViolation: ``("freeSeats=0",)`` while the SKU has no free seats; otherwise
     ``("freeSeats>0", "after=<T>")`` where T is the time of the latest ledger entry of this
     key recorded while seats were short (``after=none`` if there is none). Free seats appear
     and vanish with every joiner and leaver, so the evidence is not a seat count: what a
     reprocess depends on is seats appearing *after a shortage*. One shortage, one attempt;
     a new shortage seen by the policy (and recorded, see the contract) allows the next.
   * PendingGroupAssignment, StaleGroupAssignment, PlanMismatch: the group's
     licenseProcessingState, ``("licenseProcessingState=<state>",)``, and when the state is
     ProcessingComplete also ``"after=<T>"``, T being the latest entry of this key recorded
     while the group was still processing. One completed processing run, one attempt.
   * ProhibitedInUsageLocationViolation: the finding's evidence (``usageLocation=DE``).
   * MutuallyExclusiveViolation: the finding's evidence (the user's other active paths).

3. *Gates* - when a cause qualifies for a reprocess at all:

   * CountViolation: the SKU has free seats (`TenantFacts.free_seats`, enabled minus consumed;
     a SKU missing there counts as 0). With none: AlertInstead ("buy or free seats").
   * Pending/Stale/PlanMismatch: the group's licenseProcessingState is ProcessingComplete.
     Otherwise RetryLater at now + backoff_base: waiting for Entra is normal, not an alert.
     An unknown state (None or a group missing from `group_processing`) waits too.
   * Usage location / mutual exclusion: the evidence *changed*: the latest ledger entry of
     this key (attempt or observation) has different evidence. On first sight there is no
     sign of a change, so AlertInstead (a human fixes the location or chooses the winning
     license); the alert asks the caller to record an observation, so the fix is seen as a
     change later. During a planned swap between groups a conflict clears when the user
     leaves the old group: Entra reprocesses on membership changes itself, and at most one
     reprocess follows here.

4. *Never twice for an unchanged cause.* If the ledger holds a reprocess attempt with an equal
   Cause (key and evidence), the cause is not reprocessed again: AlertInstead ("already
   reprocessed for this cause on <date>; needs a fix").

5. *Backoff.* A qualifying cause whose key has n earlier attempts (with other evidence) waits
   until last attempt + min(backoff_base * 2**(n-1), backoff_cap): RetryLater until then.

6. *Seats.* Per SKU at most `free_seats[sku]` users are reprocessed for CountViolation: the
   oldest errors first (`Finding.since` ascending, unknown last, then user id). The rest
   RetryLater at now + backoff_base ("waiting for a free seat"). A user reprocessed for
   another cause re-runs its CountViolation too; the budget counts only users chosen for
   their seat shortage.

7. *Mass failures.* When more than `group_threshold` users share one group + SKU + code among
   the candidates (group-based, reprocessable codes; findings still waiting for their group
   to finish processing do not count), one `GroupAlert` replaces the per-user decisions for
   those findings. A mass failure has one cause - the group's configuration, a plan conflict
   built into it, or the SKU's seats - which one fix in one place repairs (then the group's
   Reprocess button in the Entra admin center; Graph v1.0 has no group reprocess); reprocessing
   thousands of users one by one would spend Graph's write budget for nothing.

8. *One decision per user.* ReprocessNow if any cause qualifies (listing the causes it is
   for), else RetryLater (the earliest not_before) if any cause waits, else AlertInstead.
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
* re-enqueue RetryLater users at `not_before`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from shared.core.findings import (
    COUNT_VIOLATION,
    DEPENDENCY_VIOLATION,
    INFO,
    MUTUALLY_EXCLUSIVE,
    OTHER,
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    PROHIBITED_IN_USAGE_LOCATION,
    STALE_GROUP_ASSIGNMENT,
    UNIQUENESS_VIOLATION,
    Finding,
)

PROCESSING_COMPLETE = "ProcessingComplete"
SEATS_FREE = "freeSeats>0"
NO_FREE_SEATS = "freeSeats=0"

REPROCESSABLE = frozenset(
    {
        COUNT_VIOLATION,
        MUTUALLY_EXCLUSIVE,
        PROHIBITED_IN_USAGE_LOCATION,
        PENDING_GROUP_ASSIGNMENT,
        STALE_GROUP_ASSIGNMENT,
        PLAN_MISMATCH,
    }
)
PROCESSING_GATED = frozenset({PENDING_GROUP_ASSIGNMENT, STALE_GROUP_ASSIGNMENT, PLAN_MISMATCH})
CHANGE_GATED = frozenset({MUTUALLY_EXCLUSIVE, PROHIBITED_IN_USAGE_LOCATION})

FIX_FIRST = MappingProxyType(
    {
        UNIQUENESS_VIOLATION: (
            "fix the duplicate proxy address first (another object already uses it), then "
            "reprocess the user: a reprocess alone fails the same way"
        ),
        DEPENDENCY_VIOLATION: (
            "give the user the required plan through another path, or disable the dependent "
            "plans, first: a reprocess alone cannot remove a license other plans depend on"
        ),
        OTHER: (
            "find the reason in the audit log ('Change user license') and fix it first: "
            "a reprocess alone does not fix an unclassified error"
        ),
    }
)

_GROUP_FIX = MappingProxyType(
    {
        COUNT_VIOLATION: "buy or free seats of the SKU",
        MUTUALLY_EXCLUSIVE: "remove the plan conflict from the group's license or its members",
        PROHIBITED_IN_USAGE_LOCATION: (
            "correct the members' usage locations or keep those locations out of the group"
        ),
        PENDING_GROUP_ASSIGNMENT: "check the group's license configuration and its audit log",
        STALE_GROUP_ASSIGNMENT: "check the group's license configuration and its audit log",
        PLAN_MISMATCH: "check the group's disabled plans and its audit log",
    }
)


@dataclass(frozen=True, slots=True)
class Cause:
    """What a reprocess would try to fix, with the evidence the fix depends on."""

    code: str
    sku_id: str | None
    group_id: str | None
    evidence: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.code}|{self.sku_id or '-'}|{self.group_id or '-'}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One ledger entry: a reprocess call for a cause, or (reprocessed=False) an observation."""

    at: datetime
    cause: Cause
    reprocessed: bool = True

    @classmethod
    def observation(cls, at: datetime, cause: Cause) -> Attempt:
        return cls(at, cause, reprocessed=False)


@dataclass(frozen=True, slots=True)
class TenantFacts:
    """What the policy needs to know about the tenant right now. Datetimes are timezone-aware."""

    now: datetime
    free_seats: Mapping[str, int]
    group_processing: Mapping[str, str | None]
    group_threshold: int = 25
    backoff_base: timedelta = timedelta(minutes=15)
    backoff_cap: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("TenantFacts.now must be timezone-aware")
        if self.backoff_base <= timedelta(0) or self.backoff_cap < self.backoff_base:
            raise ValueError("need 0 < backoff_base <= backoff_cap")
        if self.group_threshold < 0:
            raise ValueError("group_threshold must not be negative")

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the n-th attempt: base * 2**(n-1), at most the cap (0 before any)."""
        if attempts <= 0:
            return timedelta(0)
        doublings = min(attempts - 1, 64)
        if self.backoff_base.total_seconds() * float(1 << doublings) >= (
            self.backoff_cap.total_seconds()
        ):
            return self.backoff_cap
        return self.backoff_base * (1 << doublings)


@dataclass(frozen=True, slots=True)
class ReprocessNow:
    user_id: str
    causes: tuple[Cause, ...]
    reason: str
    observe: tuple[Cause, ...] = ()

    def attempts(self, at: datetime) -> tuple[Attempt, ...]:
        """The ledger entries to append once the POST succeeded at `at`."""
        return tuple(Attempt(at, cause) for cause in self.causes)


@dataclass(frozen=True, slots=True)
class RetryLater:
    user_id: str
    causes: tuple[Cause, ...]
    not_before: datetime
    reason: str
    observe: tuple[Cause, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertInstead:
    user_id: str
    causes: tuple[Cause, ...]
    reason: str
    observe: tuple[Cause, ...] = ()


Decision = ReprocessNow | RetryLater | AlertInstead


@dataclass(frozen=True, slots=True)
class GroupAlert:
    """One alert for a mass failure: many users, one group, one SKU, one code."""

    group_id: str
    sku_id: str | None
    code: str
    user_ids: tuple[str, ...]
    reason: str
    observe: tuple[tuple[str, Cause], ...] = ()


@dataclass(frozen=True, slots=True)
class ReprocessPlan:
    """One decision per user (oldest finding first), the group alerts, and when it was made."""

    users: Mapping[str, Decision]
    groups: tuple[GroupAlert, ...]
    decided_at: datetime

    @property
    def to_reprocess(self) -> list[str]:
        return [u for u, d in self.users.items() if isinstance(d, ReprocessNow)]

    @property
    def retry_later(self) -> list[RetryLater]:
        return [d for d in self.users.values() if isinstance(d, RetryLater)]

    @property
    def alerts(self) -> list[AlertInstead]:
        return [d for d in self.users.values() if isinstance(d, AlertInstead)]

    def observations(self) -> dict[str, tuple[Attempt, ...]]:
        """Every observation the caller must append to the ledger, stamped `decided_at`."""
        found: dict[str, list[Cause]] = defaultdict(list)
        for user_id, decision in self.users.items():
            found[user_id].extend(decision.observe)
        for group in self.groups:
            for user_id, cause in group.observe:
                found[user_id].append(cause)
        return {
            u: tuple(Attempt.observation(self.decided_at, c) for c in causes)
            for u, causes in sorted(found.items())
            if causes
        }


# --------------------------------------------------------------------------- internals

_NOW = "now"
_LATER = "later"
_ALERT = "alert"


@dataclass(frozen=True, slots=True)
class _Verdict:
    cause: Cause
    action: str
    reason: str
    not_before: datetime | None = None
    observe: bool = False


@dataclass(frozen=True, slots=True)
class _Candidate:
    user_id: str
    finding: Finding
    cause: Cause


class _Ledger:
    """One user's entries by cause key, oldest first."""

    def __init__(self, entries: Sequence[Attempt]) -> None:
        # Ties in time are broken by content, so the caller's order never matters.
        ordered = sorted(entries, key=lambda e: (e.at, e.reprocessed, e.cause.evidence))
        self._by_key: dict[str, list[Attempt]] = defaultdict(list)
        for entry in ordered:
            self._by_key[entry.cause.key].append(entry)

    def entries(self, key: str) -> list[Attempt]:
        return self._by_key.get(key, [])

    def latest(self, key: str) -> Attempt | None:
        entries = self.entries(key)
        return entries[-1] if entries else None

    def attempts(self, key: str) -> list[Attempt]:
        return [e for e in self.entries(key) if e.reprocessed]

    def closed_since(self, key: str, open_token: str) -> str:
        """`after=<T>`: the latest entry of the key recorded while the gate was closed."""
        closed = [e for e in self.entries(key) if e.cause.evidence[:1] != (open_token,)]
        return f"after={closed[-1].at.isoformat()}" if closed else "after=none"


def _since_key(since: str | None) -> tuple[int, datetime]:
    """Sort key for Graph's lastUpdatedDateTime: oldest first, unknown (or unreadable) last."""
    if since:
        try:
            parsed = datetime.fromisoformat(since)
        except ValueError:
            pass
        else:
            return (0, parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return (1, datetime.min.replace(tzinfo=UTC))


def _date(at: datetime) -> str:
    return at.isoformat(timespec="minutes")


def _cause(finding: Finding, ledger: _Ledger, facts: TenantFacts) -> Cause:
    code, sku_id, group_id = finding.code, finding.sku_id, finding.group_id
    key = Cause(code, sku_id, group_id).key
    if code == COUNT_VIOLATION:
        if facts.free_seats.get(sku_id or "", 0) <= 0:
            return Cause(code, sku_id, group_id, (NO_FREE_SEATS,))
        return Cause(code, sku_id, group_id, (SEATS_FREE, ledger.closed_since(key, SEATS_FREE)))
    if code in PROCESSING_GATED:
        state = facts.group_processing.get(group_id or "")
        token = f"licenseProcessingState={state or 'unknown'}"
        if state != PROCESSING_COMPLETE:
            return Cause(code, sku_id, group_id, (token,))
        return Cause(code, sku_id, group_id, (token, ledger.closed_since(key, token)))
    return Cause(code, sku_id, group_id, finding.evidence)


def _candidates(
    findings: Iterable[Finding], ledgers: Mapping[str, _Ledger], facts: TenantFacts
) -> list[_Candidate]:
    seen: dict[tuple[str, str], _Candidate] = {}
    for finding in findings:
        user_id = finding.user_id
        if user_id is None or finding.severity == INFO:
            continue
        cause = _cause(finding, ledgers[user_id], facts)
        candidate = _Candidate(user_id, finding, cause)
        previous = seen.get((user_id, cause.key))
        if previous is None or _candidate_order(candidate) < _candidate_order(previous):
            seen[(user_id, cause.key)] = candidate
    return sorted(seen.values(), key=_candidate_order)


def _candidate_order(
    c: _Candidate,
) -> tuple[str, str, tuple[int, datetime], tuple[str, ...]]:
    return (c.user_id, c.cause.key, _since_key(c.finding.since), c.cause.evidence)


def _waits_for_processing(candidate: _Candidate, facts: TenantFacts) -> bool:
    return (
        candidate.cause.code in PROCESSING_GATED
        and facts.group_processing.get(candidate.cause.group_id or "") != PROCESSING_COMPLETE
    )


def _mass_failures(
    candidates: list[_Candidate], facts: TenantFacts
) -> dict[tuple[str, str | None, str], list[_Candidate]]:
    buckets: dict[tuple[str, str | None, str], list[_Candidate]] = defaultdict(list)
    for c in candidates:
        group_id = c.cause.group_id
        if (
            c.cause.code in REPROCESSABLE
            and group_id is not None
            and not _waits_for_processing(c, facts)
        ):
            buckets[(group_id, c.cause.sku_id, c.cause.code)].append(c)
    return {
        bucket: members
        for bucket, members in sorted(buckets.items(), key=lambda kv: _bucket_order(kv[0]))
        if len({m.user_id for m in members}) > facts.group_threshold
    }


def _bucket_order(bucket: tuple[str, str | None, str]) -> tuple[str, str, str]:
    return (bucket[0], bucket[1] or "", bucket[2])


def _group_alert(
    bucket: tuple[str, str | None, str],
    members: list[_Candidate],
    ledgers: Mapping[str, _Ledger],
    facts: TenantFacts,
) -> GroupAlert:
    group_id, sku_id, code = bucket
    user_ids = tuple(sorted({m.user_id for m in members}))
    seats = ""
    if code == COUNT_VIOLATION:
        seats = f" ({max(0, facts.free_seats.get(sku_id or '', 0))} free seats now)"
    reason = (
        f"{len(user_ids)} users of group {group_id} have {code} for SKU {sku_id}{seats}: one "
        f"cause, one fix - {_GROUP_FIX.get(code, 'fix the group')}, then use Reprocess on the "
        "group in the Entra admin center; reprocessing the users one by one would spend "
        "Graph's write budget for nothing"
    )
    observe = tuple(
        (m.user_id, m.cause) for m in members if _needs_record(ledgers[m.user_id], m.cause)
    )
    return GroupAlert(group_id, sku_id, code, user_ids, reason, observe)


def _needs_record(ledger: _Ledger, cause: Cause) -> bool:
    latest = ledger.latest(cause.key)
    return latest is None or latest.cause.evidence != cause.evidence


def _judge(candidate: _Candidate, ledger: _Ledger, facts: TenantFacts) -> _Verdict:
    """One cause's verdict before the seat budget: reprocess, wait, or alert."""
    cause = candidate.cause
    code = cause.code
    if code not in REPROCESSABLE:
        fix = FIX_FIRST.get(code) or (
            f"unknown error {code}: find the reason in the audit log ('Change user license') "
            "and fix it first"
        )
        return _Verdict(cause, _ALERT, fix)
    if cause.group_id is None:
        return _Verdict(
            cause,
            _ALERT,
            f"{code} on a direct assignment of {cause.sku_id}: a reprocess re-runs group-based "
            "assignments only; fix the cause and assign the license again",
        )
    done = [a for a in ledger.attempts(cause.key) if a.cause == cause]
    if done:
        return _Verdict(
            cause,
            _ALERT,
            f"already reprocessed for this cause ({code}) on {_date(done[-1].at)}; needs a fix"
            + (f": {_human_fix(cause)}" if code in CHANGE_GATED else ""),
            observe=True,
        )
    closed = _closed_gate(cause, ledger, facts)
    if closed is not None:
        return closed
    attempts = ledger.attempts(cause.key)
    if attempts:
        not_before = attempts[-1].at + facts.backoff(len(attempts))
        if facts.now < not_before:
            return _Verdict(
                cause,
                _LATER,
                f"{code} was reprocessed {len(attempts)} time(s), last on "
                f"{_date(attempts[-1].at)}; backing off until {_date(not_before)}",
                not_before,
            )
    return _Verdict(cause, _NOW, _why_now(cause, ledger, facts))


def _closed_gate(cause: Cause, ledger: _Ledger, facts: TenantFacts) -> _Verdict | None:
    code = cause.code
    if code == COUNT_VIOLATION and cause.evidence == (NO_FREE_SEATS,):
        return _Verdict(
            cause,
            _ALERT,
            f"no free seats of {cause.sku_id}: buy or free seats; License Guard reprocesses "
            "once seats are free",
            observe=True,
        )
    if code in PROCESSING_GATED and facts.group_processing.get(cause.group_id or "") != (
        PROCESSING_COMPLETE
    ):
        state = facts.group_processing.get(cause.group_id or "") or "unknown"
        return _Verdict(
            cause,
            _LATER,
            f"group {cause.group_id} is still processing (licenseProcessingState={state})",
            facts.now + facts.backoff_base,
            observe=True,
        )
    if code in CHANGE_GATED:
        latest = ledger.latest(cause.key)
        if latest is None or latest.cause.evidence == cause.evidence:
            since = "first seen now" if latest is None else f"unchanged since {_date(latest.at)}"
            return _Verdict(cause, _ALERT, f"{_human_fix(cause)} ({since})", observe=True)
    return None


def _human_fix(cause: Cause) -> str:
    """What a person must do about a usage location or a plan conflict."""
    if cause.code == PROHIBITED_IN_USAGE_LOCATION:
        return (
            f"usage location ({', '.join(cause.evidence) or 'unknown'}) does not allow "
            f"{cause.sku_id}: correct the usage location or remove the user from group "
            f"{cause.group_id}"
        )
    return (
        f"a plan of {cause.sku_id} conflicts with the user's other licenses "
        f"({', '.join(cause.evidence) or 'none active'}): decide which license wins; "
        "during a planned swap it clears when the user leaves the old group"
    )


def _why_now(cause: Cause, ledger: _Ledger, facts: TenantFacts) -> str:
    if cause.code == COUNT_VIOLATION:
        free = facts.free_seats.get(cause.sku_id or "", 0)
        return f"{free} free seat(s) of {cause.sku_id}: the seat shortage may be over"
    if cause.code in PROCESSING_GATED:
        return (
            f"group {cause.group_id} finished processing and {cause.code} persists "
            f"for {cause.sku_id}"
        )
    latest = ledger.latest(cause.key)
    before = ", ".join(latest.cause.evidence) if latest else ""
    return (
        f"{cause.code}: the evidence changed ({before or 'none'} -> "
        f"{', '.join(cause.evidence) or 'none'}); the cause may be fixed"
    )


def _apply_seat_budget(
    verdicts: dict[str, list[_Verdict]],
    since: Mapping[tuple[str, str], str | None],
    facts: TenantFacts,
) -> None:
    """Keep CountViolation reprocesses within each SKU's free seats, oldest errors first."""
    wanting: dict[str, set[str]] = defaultdict(set)
    for user_id, user_verdicts in verdicts.items():
        for v in user_verdicts:
            if v.action == _NOW and v.cause.code == COUNT_VIOLATION:
                wanting[v.cause.sku_id or ""].add(user_id)
    for sku_id, users in wanting.items():
        free = max(0, facts.free_seats.get(sku_id, 0))
        ranked = sorted(users, key=lambda u: (_since_key(since.get((u, sku_id))), u))
        for user_id in ranked[free:]:
            verdicts[user_id] = [
                _Verdict(
                    v.cause,
                    _LATER,
                    f"waiting for a free seat of {sku_id}: the {free} free seat(s) go to users "
                    "whose error is older",
                    facts.now + facts.backoff_base,
                )
                if v.action == _NOW
                and v.cause.code == COUNT_VIOLATION
                and (v.cause.sku_id or "") == sku_id
                else v
                for v in verdicts[user_id]
            ]


def _decide_user(user_id: str, verdicts: list[_Verdict], ledger: _Ledger) -> Decision:
    ordered = sorted(verdicts, key=lambda v: (v.cause.key, v.cause.evidence))
    observe = tuple(v.cause for v in ordered if v.observe and _needs_record(ledger, v.cause))
    now = [v for v in ordered if v.action == _NOW]
    if now:
        return ReprocessNow(user_id, _causes(now), _reasons(now), observe)
    later = [v for v in ordered if v.action == _LATER]
    if later:
        not_before = min(v.not_before for v in later if v.not_before is not None)
        return RetryLater(user_id, _causes(later), not_before, _reasons(later), observe)
    return AlertInstead(user_id, _causes(ordered), _reasons(ordered), observe)


def _causes(verdicts: list[_Verdict]) -> tuple[Cause, ...]:
    return tuple(v.cause for v in verdicts)


def _reasons(verdicts: list[_Verdict]) -> str:
    return "; ".join(dict.fromkeys(v.reason for v in verdicts))


# --------------------------------------------------------------------------- entry point


def decide_reprocess(
    findings: Iterable[Finding],
    history: Mapping[str, Sequence[Attempt]],
    facts: TenantFacts,
) -> ReprocessPlan:
    """Decide, per user, whether to reprocess now, retry later or alert instead (see module)."""
    findings = list(findings)
    user_ids = {f.user_id for f in findings if f.user_id is not None}
    ledgers = {u: _Ledger(history.get(u, ())) for u in user_ids}
    candidates = _candidates(findings, ledgers, facts)

    mass = _mass_failures(candidates, facts)
    groups = tuple(_group_alert(b, members, ledgers, facts) for b, members in mass.items())
    in_group_alert = {(m.user_id, m.cause.key) for members in mass.values() for m in members}

    verdicts: dict[str, list[_Verdict]] = defaultdict(list)
    oldest: dict[str, tuple[int, datetime]] = {}
    count_since: dict[tuple[str, str], str | None] = {}
    for c in candidates:
        if (c.user_id, c.cause.key) in in_group_alert:
            continue
        verdicts[c.user_id].append(_judge(c, ledgers[c.user_id], facts))
        order = _since_key(c.finding.since)
        oldest[c.user_id] = min(oldest.get(c.user_id, order), order)
        if c.cause.code == COUNT_VIOLATION:
            seat = (c.user_id, c.cause.sku_id or "")
            if seat not in count_since or _since_key(c.finding.since) < _since_key(
                count_since[seat]
            ):
                count_since[seat] = c.finding.since
    _apply_seat_budget(verdicts, count_since, facts)

    users = {
        u: _decide_user(u, verdicts[u], ledgers[u])
        for u in sorted(verdicts, key=lambda u: (oldest[u], u))
    }
    return ReprocessPlan(MappingProxyType(users), groups, facts.now)
