"""Alertability: which findings are worth an email now, which were resolved since the last
digest, and which only belong in the weekly summary. Pure: rows and facts in, verdicts out.

Rules (README "Alerts"):

* `info` findings never go to the digest: they are standing facts (nested groups, missing
  usage locations, licensed disabled accounts) for the weekly summary.
* Exclusions (SKU, group, user) mute a finding: it stays in the ledger and in reports.
* `PendingGroupAssignment`, `StaleGroupAssignment` and `PlanMismatch` wait for Entra: alertable
  once the group's `licenseProcessingState` is `ProcessingComplete` and the finding is older
  than the grace, or, whatever the state, once it is older than the fallback (24 h). A 25k
  member group legitimately takes hours.
* A `MutuallyExclusiveViolation` whose user is a direct member of the finding's group *and*
  of another licensed group is a SKU swap in progress: alertable only once it is older than
  the swap grace (3 days).
* Every other `error` or `warning` is alertable once older than the grace (30 minutes): a
  finding that clears within minutes (a join racing Entra's processing) never mails anyone.

A finding is *new* in a digest when it is open, alertable and not yet mailed (`alerted_in`
empty); *resolved* when it was mailed, is resolved now, and its resolution was not mailed yet
(`resolved_in` empty). A finding resolved before it was ever mailed is not news.

The data-loss guard's held licenses (`held_licenses`) are here too: what Graph reports a user
holds now (active assignment states), to compare with the effective licenses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shared.core.effective import DIRECT, GROUP, EffectiveLicense, Path
from shared.core.findings import (
    ERROR,
    MUTUALLY_EXCLUSIVE,
    SEVERITY_ORDER,
    WARNING,
)
from shared.core.model import Sku, User
from shared.core.reprocess import PROCESSING_COMPLETE, PROCESSING_GATED

ALERT: Final = "alert"
GRACE: Final = "grace"
PROCESSING: Final = "processing"
SWAP: Final = "swap"
MUTED: Final = "muted"
WEEKLY: Final = "weekly"

HOLDING_STATES: Final = frozenset({"Active", "ActiveWithError"})
FAILED_STATE: Final = "Error"


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One findings-ledger entity as plain values."""

    key: str
    subject: str
    code: str
    severity: str
    sku_id: str | None
    group_id: str | None
    message: str
    remedy: str
    first_seen: datetime
    last_seen: datetime | None = None
    resolved_at: datetime | None = None
    alerted_in: str | None = None
    resolved_in: str | None = None
    reprocess_queued_at: datetime | None = None
    user_ids: tuple[str, ...] = ()
    """The users the finding names besides its subject: all of them, or a sample when the
    ledger keeps only some (a NestedGroupMember can leave 100k users out)."""
    user_count: int | None = None
    """How many users `user_ids` stands for when it is a sample; None: exactly `user_ids`."""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def queue_name(self) -> str | None:
        """The queue a finding of subject `queue:<name>` is about (a PoisonedMessage)."""
        kind, _, rest = self.subject.partition(":")
        return rest if kind == "queue" and rest else None

    @property
    def named_group_id(self) -> str | None:
        """The group the finding is about, to name and link. A PoisonedMessage keeps its
        message's digest where a group id would be (one finding per message): no group."""
        return None if self.queue_name else self.group_id

    @property
    def user_total(self) -> int:
        """How many users the finding names besides its subject (the true count)."""
        return len(self.user_ids) if self.user_count is None else self.user_count

    @property
    def user_id(self) -> str | None:
        return None if ":" in self.subject else self.subject


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Muted SKUs, groups and users (ids or UPNs), compared case-insensitively."""

    skus: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def mutes(self, row: LedgerRow, upn: str | None = None) -> str | None:
        """Why this finding is muted, or None."""
        if row.sku_id and row.sku_id.lower() in self.skus:
            return "SKU excluded"
        if row.group_id and row.group_id.lower() in self.groups:
            return "group excluded"
        user = row.user_id
        if user and (user.lower() in self.users or (upn or "").lower() in self.users):
            return "user excluded"
        return None


@dataclass(frozen=True, slots=True)
class AlertFacts:
    now: datetime
    grace: timedelta = timedelta(minutes=30)
    swap_grace: timedelta = timedelta(days=3)
    processing_fallback: timedelta = timedelta(hours=24)
    group_processing: Mapping[str, str | None] = field(default_factory=dict)
    """Group id -> licenseProcessingState (None or absent: unknown)."""
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """User id -> licensed groups the user is a direct member of (for swap detection)."""
    exclusions: Exclusions = Exclusions()
    upns: Mapping[str, str] = field(default_factory=dict)
    """User id -> UPN, for exclusions given as UPNs."""


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    """ALERT, GRACE, PROCESSING, SWAP, MUTED or WEEKLY."""
    reason: str = ""


def swap_in_progress(row: LedgerRow, facts: AlertFacts) -> bool:
    """A conflict while the user is in both the new group and another licensed group."""
    if row.code != MUTUALLY_EXCLUSIVE or not row.group_id or not row.user_id:
        return False
    groups = facts.memberships.get(row.user_id, frozenset())
    return row.group_id in groups and bool(groups - {row.group_id})


def muted_by(row: LedgerRow, facts: AlertFacts) -> str | None:
    """Why an exclusion mutes this finding, open or resolved, or None."""
    return facts.exclusions.mutes(row, facts.upns.get(row.user_id or ""))


def classify(row: LedgerRow, facts: AlertFacts) -> Verdict:
    """Whether one open finding is alertable now, and if not, why."""
    muted = muted_by(row, facts)
    if muted:
        return Verdict(MUTED, muted)
    if row.severity not in (ERROR, WARNING):
        return Verdict(WEEKLY, "standing information: weekly summary")
    age = facts.now - row.first_seen
    if row.code in PROCESSING_GATED:
        state = facts.group_processing.get(row.group_id or "")
        if age >= facts.processing_fallback:
            return Verdict(ALERT, f"still open after {_hours(facts.processing_fallback)}")
        if state == PROCESSING_COMPLETE and age >= facts.grace:
            return Verdict(ALERT, "group processing complete and the finding persists")
        return Verdict(PROCESSING, f"group still processing ({state or 'state unknown'})")
    if swap_in_progress(row, facts):
        if age >= facts.swap_grace:
            return Verdict(ALERT, f"swap not finished after {facts.swap_grace.days} day(s)")
        return Verdict(SWAP, "SKU swap in progress: the user is in both groups")
    if age >= facts.grace:
        return Verdict(ALERT)
    return Verdict(GRACE, "within the grace period")


def _hours(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 3600)} h"


@dataclass(frozen=True, slots=True)
class DigestPlan:
    new: tuple[LedgerRow, ...]
    """Open, alertable, never mailed."""
    resolved: tuple[LedgerRow, ...]
    """Mailed before, resolved since, resolution not mailed yet; not muted."""
    still_open: Counter[str]
    """Open findings already mailed and still alertable, by severity."""
    waiting: Counter[str]
    """Open error/warning findings not alertable yet, by verdict kind (grace, processing,
    swap)."""
    muted: int
    weekly: int

    @property
    def empty(self) -> bool:
        return not self.new and not self.resolved

    @property
    def open_total(self) -> int:
        return len(self.new) + sum(self.still_open.values())


def plan_digest(rows: Iterable[LedgerRow], facts: AlertFacts) -> DigestPlan:
    new, resolved = [], []
    still_open: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    muted = weekly = 0
    for row in rows:
        if not row.is_open:
            if row.alerted_in and not row.resolved_in and not muted_by(row, facts):
                resolved.append(row)  # the baseline marks muted findings known too
            continue
        verdict = classify(row, facts)
        if verdict.kind == MUTED:
            muted += 1
        elif verdict.kind == WEEKLY:
            weekly += 1
        elif verdict.kind != ALERT:
            waiting[verdict.kind] += 1
        elif row.alerted_in:
            still_open[row.severity] += 1
        else:
            new.append(row)
    return DigestPlan(
        tuple(sorted(new, key=_order)),
        tuple(sorted(resolved, key=_order)),
        still_open,
        waiting,
        muted,
        weekly,
    )


def weekly_rows(rows: Iterable[LedgerRow], facts: AlertFacts) -> tuple[LedgerRow, ...]:
    """Open `info` findings that are not muted: the weekly summary's content."""
    return tuple(
        sorted(
            (r for r in rows if r.is_open and classify(r, facts).kind == WEEKLY),
            key=_order,
        )
    )


def _order(row: LedgerRow) -> tuple[int, str, str, str, str]:
    return (
        SEVERITY_ORDER.get(row.severity, 3),
        row.code,
        row.group_id or "",
        row.sku_id or "",
        row.subject,
    )


@dataclass(frozen=True, slots=True)
class RowGroup:
    """Findings sharing group x SKU x code: one line of a mail."""

    group_id: str | None
    sku_id: str | None
    code: str
    severity: str
    rows: tuple[LedgerRow, ...]

    @property
    def user_ids(self) -> tuple[str, ...]:
        ids: dict[str, None] = {}
        for row in self.rows:
            if row.user_id:
                ids[row.user_id] = None
            ids.update(dict.fromkeys(row.user_ids))
        return tuple(ids)

    @property
    def user_total(self) -> int:
        """How many users the line is about, none counted twice: `user_ids`, plus those a
        row's stored sample left out (counted, not named). Who those are is unknown, so they
        may be users another row names, or another sample leaves out: the smallest total the
        rows allow; exact when `user_total_exact`."""
        return len(self.user_ids) + max((unnamed for _, unnamed in self._unnamed()), default=0)

    @property
    def user_total_exact(self) -> bool:
        """Whether `user_total` is the true count: at most one row's sample leaves users out,
        and no other row names a user it could have left out."""
        unnamed = self._unnamed()
        return not unnamed or (len(unnamed) == 1 and unnamed[0][0] == 0)

    def _unnamed(self) -> list[tuple[int, int]]:
        """Per row whose stored sample leaves users out: how many users the other rows name
        (who may be among them), and how many of its left-out users none of those can be."""
        named = set(self.user_ids)
        found = []
        for row in self.rows:
            left_out = row.user_total - len(row.user_ids)
            if left_out > 0:
                elsewhere = len(named - set(row.user_ids) - {row.user_id})
                found.append((elsewhere, max(0, left_out - elsewhere)))
        return found


def group_rows(rows: Iterable[LedgerRow]) -> list[RowGroup]:
    """Rows grouped by group x SKU x code; most severe first, then the largest."""
    buckets: dict[tuple[str | None, str | None, str], list[LedgerRow]] = {}
    for row in rows:
        buckets.setdefault((row.group_id, row.sku_id, row.code), []).append(row)
    groups = [
        RowGroup(g, s, code, min((r.severity for r in items), key=_severity), tuple(items))
        for (g, s, code), items in buckets.items()
    ]
    groups.sort(
        key=lambda rg: (
            _severity(rg.severity),
            -len(rg.rows),
            rg.code,
            rg.group_id or "",
            rg.sku_id or "",
        )
    )
    return groups


def _severity(severity: str) -> int:
    return SEVERITY_ORDER.get(severity, 3)


def counts_by(rows: Iterable[LedgerRow]) -> Counter[tuple[str | None, str | None, str]]:
    """How many findings per group x SKU x code."""
    return Counter((r.group_id, r.sku_id, r.code) for r in rows)


# --------------------------------------------------------------------------- data-loss guard


def held_licenses(user: User, skus: Mapping[str, Sku]) -> tuple[EffectiveLicense, ...]:
    """What Graph reports the user holds now: one path per active assignment state (Active or
    ActiveWithError), its plans the SKU's minus the state's disabled plans."""
    by_sku: dict[str, list[Path]] = {}
    for state in user.states:
        sku = skus.get(state.sku_id)
        if sku is None or state.state not in HOLDING_STATES:
            continue
        kind = DIRECT if state.is_direct else GROUP
        path = Path(kind, state.assigned_by_group, sku.plan_ids - state.disabled_plans)
        by_sku.setdefault(state.sku_id, []).append(path)
    licenses = []
    for sku_id, paths in by_sku.items():
        enabled = frozenset().union(*(p.enabled_plans for p in paths))
        licenses.append(
            EffectiveLicense(sku_id, tuple(paths), enabled, skus[sku_id].plan_ids - enabled)
        )
    return tuple(licenses)


def granting_licenses(
    user: User, licenses: Iterable[EffectiveLicense]
) -> tuple[EffectiveLicense, ...]:
    """The effective licenses without the group paths Graph shows in state Error for the user:
    a group whose assignment fails (no seat left, a conflict) grants nothing, whatever the
    membership says (a move to a group without seats leaves the user with no mailbox)."""
    failing = {(s.sku_id, s.assigned_by_group) for s in user.states if s.state == FAILED_STATE}
    out = []
    for lic in licenses:
        paths = tuple(p for p in lic.paths if (lic.sku_id, p.group_id) not in failing)
        if len(paths) == len(lic.paths):
            out.append(lic)
        elif paths:
            enabled = frozenset().union(*(p.enabled_plans for p in paths))
            every = lic.enabled_plans | lic.disabled_plans
            out.append(EffectiveLicense(lic.sku_id, paths, enabled, every - enabled))
    return tuple(out)


def mass_loss(recent_losses: int, threshold: int) -> bool:
    """More users than `threshold` lost a capability within the window."""
    return recent_losses > threshold
