"""What the reprocess policy decides, and the ledger entries it reads and asks for.

The records `decide_reprocess` (in `shared.core.reprocess`) takes and returns: a `Cause` with
its evidence, a ledger `Attempt`, the `TenantFacts` of the moment (with the backoff rule), one
`Decision` per user, the `GroupAlert`s for mass failures and the whole `ReprocessPlan`.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shared.core.model import PrepaidUnits

GROUP_THRESHOLD: Final = 25
"""More users than this failing alike in one group (group, SKU, code) are one mass failure: one
group alert, no reprocess of them one by one (`TenantFacts.group_threshold`)."""

BACKOFF_BASE: Final = timedelta(minutes=15)
"""The wait of a deferred reprocess: a group still processing, a user left waiting for a seat
(`TenantFacts.backoff_base`), a seat handed back at the re-check before sending."""


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
    group_threshold: int = GROUP_THRESHOLD
    failing_elsewhere: Mapping[str, int] = field(default_factory=dict)
    """Users counted toward a mass failure (by `Cause.key`) among users decided before these
    (the nightly scan's earlier pages): a group's members are spread over the pages."""
    backoff_base: timedelta = BACKOFF_BASE
    backoff_cap: timedelta = timedelta(hours=24)
    processing_wait_cap: timedelta = timedelta(hours=4)
    """The longest wait between looks at a group still processing (the wait doubles from
    `backoff_base`); the errors re-check (`recheck_errors`) recomputes pending and stale
    findings once their group finishes, and the nightly scan looks too."""
    prepaid: Mapping[str, PrepaidUnits] = field(default_factory=dict)
    """Each SKU's seats by stage: an alert about missing seats says to renew (warning) or
    reactivate (suspended) before buying."""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("TenantFacts.now must be timezone-aware")
        if self.backoff_base <= timedelta(0) or self.backoff_cap < self.backoff_base:
            raise ValueError("need 0 < backoff_base <= backoff_cap")
        if self.processing_wait_cap < self.backoff_base:
            raise ValueError("need backoff_base <= processing_wait_cap")
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
class DecisionBase:
    """What every decision says: the user, the causes it acts on, why, and the causes to record
    as observed."""

    user_id: str
    causes: tuple[Cause, ...]
    reason: str
    observe: tuple[Cause, ...] = ()


@dataclass(frozen=True, slots=True)
class ReprocessNow(DecisionBase):
    retry_at: datetime | None = field(default=None, kw_only=True)
    """When the user's causes left waiting (a group still processing, a backoff, a seat) are
    due, or None: the caller re-enqueues the user then, as for a `RetryLater`."""

    def attempts(self, at: datetime) -> tuple[Attempt, ...]:
        """The ledger entries to append once the POST succeeded at `at`."""
        return tuple(Attempt(at, cause) for cause in self.causes)


@dataclass(frozen=True, slots=True)
class RetryLater(DecisionBase):
    not_before: datetime = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class AlertInstead(DecisionBase):
    """No reprocess for these causes: the findings are alerted on instead."""


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
    failing: Mapping[str, int] = field(default_factory=dict)
    """Users counted toward a mass failure here, by `Cause.key` (for `failing_elsewhere`)."""

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
