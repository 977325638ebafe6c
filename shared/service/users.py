"""The one user pipeline: read, evaluate, decide, act — for the recompute queue, the nightly
scan's pages and the dry run alike, so a policy change is one edit.

Levels, each calling the next:

- `reconcile_users(svc, user_ids, mode)`: read the users from Graph (`user_reads`), evaluate
  them with the core exactly as `license-guard evaluate` would, and settle them; users Graph
  no longer knows have their open findings resolved.
- `settle(svc, tenant, evaluation, mode)`: decide (the core's pure `decide_users`, given the
  reprocess ledger, the groups' processing states and the seats already promised) and act
  through a `UserWrites`: send reprocesses left unsent, queue reprocesses (when the write gate
  allows), delay recomputes, store observations, reconcile the findings ledger (new,
  persisting, resolved) and mail the data-loss guard. The nightly scan settles each page it
  read; the dry run settles with `RecordedWrites`, which writes nothing.

In `observe` mode (the default), for groups outside the act allow-list, with writes disabled,
or in a baseline run, the decision is only logged ("would reprocess X because Y").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.core.evaluate import Evaluation, UserReport, evaluate
from shared.core.findings import COUNT_VIOLATION, Finding
from shared.core.model import Tenant
from shared.core.reprocess import AlertInstead, Decision, ReprocessNow, ReprocessPlan, RetryLater
from shared.core.user_decisions import cause_key, decide_users, promised_seats, unused_seats
from shared.ports.messages import RecomputeUsers
from shared.service.crashpoints import crash_point
from shared.service.gone_capabilities import forget_gone_ledger, forget_gone_user
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ReprocessLedger
from shared.service.stores.pending_retries import early_by
from shared.service.user_reads import PartitionsReadOnce, current_processing_states, read_users
from shared.service.user_writes import LedgerWrites, UserWrites

log = structlog.get_logger(__name__)

BASELINE_BLOCK = "baseline: nothing is queued"


@dataclass
class RecomputeOutcome:
    evaluated: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    would_reprocess: list[str] = field(default_factory=list)
    retry_later: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


@dataclass
class Mode:
    """How one run settles its users (the recompute queue's defaults)."""

    run_id: str
    """The correlation id of messages and ledger rows."""
    baseline: bool = False
    """Record findings and observations; queue, retry, resend and mail nothing."""
    retry: bool = True
    """Send delayed recomputes for users the policy asks to retry later."""
    reread_processing: bool = True
    """Re-read gated groups' processing states (False: the caller read the groups just now)."""
    ledger_of_everyone: bool = True
    """Read the reprocess ledger of every user read (False: only of users with findings)."""
    open_subjects: Collection[str] | None = None
    """When given, users with no findings that are not here have nothing to record."""
    promised: Counter[str] = field(default_factory=Counter)
    """Seats promised per SKU to CountViolation reprocesses queued earlier in the run; grows
    with each one this run queues."""
    in_flight: dict[str, set[str]] | None = None
    """SKUs with a CountViolation reprocess in flight per user, tenant-wide, as the reprocess
    ledger said when the run first decided a CountViolation (None: not read yet); later ones
    the run queues itself are in `promised`."""
    failing: Counter[str] = field(default_factory=Counter)
    """Users counted toward a mass failure (group, SKU and code) earlier in the run; grows
    with each page, so a failing group's members spread over the pages are one group alert."""
    scan_page: bool = False
    """A page of the nightly scan: its handler's crash points (`shared.service.crashpoints`)
    instead of the recompute's."""
    seats_counted_at: datetime | None = None
    """When the SKU counts the run decides seats on were read, at the latest (None: not
    known): a CountViolation reprocess done since still holds its seat (`ReprocessLedger`)."""
    read_at: datetime | None = None
    """When the users' data was read from Graph, at the earliest (None: not known): what the
    run records does not replace what a run that read them later recorded
    (`shared.service.stores.read_times`)."""


async def recompute_users(svc: Services, msg: RecomputeUsers) -> RecomputeOutcome:
    """The recompute queue's entry: the pipeline over the message's users; a delayed retry
    handled before its due time (this instance's clock behind its sender's) waits for it
    again: handled now, it would read its own record as a retry still to come and end the
    users' retry chain (`PendingRetries`)."""
    wait = early_by(msg.due_at, svc.now())
    if wait:
        svc.send(msg, delay_seconds=wait)
        log.info("users.retry_early", correlation_id=msg.correlation_id, users=len(msg.user_ids),
                 due_at=msg.due_at, wait_seconds=wait)  # fmt: skip
        return RecomputeOutcome()
    outcome = await reconcile_users(svc, msg.user_ids, Mode(run_id=msg.correlation_id))
    log.info(
        "users.recomputed",
        correlation_id=msg.correlation_id,
        users=len(outcome.evaluated),
        gone=len(outcome.gone),
        new_findings=len(outcome.new_findings),
        resolved=len(outcome.resolved),
        reprocess_queued=len(outcome.queued),
        would_reprocess=len(outcome.would_reprocess),
    )
    return outcome


async def reconcile_users(svc: Services, user_ids: Sequence[str], mode: Mode) -> RecomputeOutcome:
    """Read the users from Graph, evaluate, decide and act on them (see the module docstring)."""
    read = await read_users(svc, user_ids)
    tenant, mode.read_at, mode.seats_counted_at = read.tenant, read.read_at, read.skus_read_at
    evaluation = evaluate(tenant, *catalog().names_for(tenant), plan_conflicts())
    gone = [u for u in user_ids if u not in tenant.users]
    return await settle(svc, tenant, evaluation, mode, flush=user_ids, gone=gone)


async def settle(
    svc: Services,
    tenant: Tenant,
    evaluation: Evaluation,
    mode: Mode,
    writes: UserWrites | None = None,
    *,
    flush: Iterable[str] = (),
    gone: Sequence[str] | None = None,
) -> RecomputeOutcome:
    """Decide and act on evaluated users; `flush`: users whose unsent reprocesses are sent
    first; `gone`: users no longer in the tenant (None: the caller does not look for them)."""
    outcome = RecomputeOutcome()
    ledger = ReprocessLedger(
        PartitionsReadOnce(svc.tables.reprocessledger), seats_counted_at=mode.seats_counted_at
    )
    writes = writes or LedgerWrites(svc, ledger, mode.read_at, alerting=not mode.baseline)
    findings = [f for report in evaluation.users for f in report.findings]
    plan = await _decide(svc, tenant, findings, ledger, mode)
    mode.failing.update(plan.failing)
    if not mode.scan_page:
        crash_point(svc, "recompute.after_read")
    flush = () if mode.baseline else flush
    # On a scan page, users with findings the policy left undecided (a CountViolation the run
    # queued, still in flight) are looked at for what the run queued too.
    undecided = sorted({f.user_id for f in findings if f.user_id} - plan.users.keys())
    decisions = [*plan.users.items(), *((u, None) for u in undecided if mode.scan_page)]
    unused = unused_seats(tenant)
    queued = _act(
        svc, plan, mode, writes, outcome,
        decisions=decisions, flush=flush, unused=unused, ledger=ledger,
    )  # fmt: skip
    _record(writes, tenant, evaluation.users, mode, queued, outcome)
    if mode.scan_page:
        crash_point(svc, "reconcile.after_page_findings")
    else:
        crash_point(svc, "recompute.after_findings")
    if gone is not None:
        resolve_gone(svc, gone, mode.run_id, outcome, read_at=mode.read_at)
        crash_point(svc, "recompute.after_gone")
    if not mode.baseline:
        # The ledger is the data-loss alert's outbox: findings not yet alerted are mailed now,
        # or by the next tenant-alerts run if Graph refuses (alert_data_loss_owed).
        await writes.alert_data_loss(outcome.new_findings)
    return outcome


def resolve_gone(
    svc: Services,
    user_ids: Iterable[str],
    run_id: str,
    outcome: RecomputeOutcome,
    *,
    read_at: datetime | None = None,
) -> None:
    """Deleted (or not yet replicated) users: their open findings no longer apply (`read_at`:
    when Graph was found not to know them, at the earliest), and their capability records go
    (`forget_gone_user`: a loss still open is kept for a user restored in time), as does
    their reprocess ledger. Those first: the nightly scan finds the user gone again only
    while a finding is open (its finish, any user with a record or ledger rows)."""
    ledger = FindingsLedger(svc.tables.findings)
    for user_id in user_ids:
        forget_gone_user(svc, user_id, read_at)
        forget_gone_ledger(svc, user_id, read_at)
        change = ledger.reconcile(user_id, [], now=svc.now(), run_id=run_id, read_at=read_at)
        outcome.gone.append(user_id)
        outcome.resolved.extend(change.resolved)


async def _decide(
    svc: Services, tenant: Tenant, findings: list[Finding], ledger: ReprocessLedger, mode: Mode
) -> ReprocessPlan:
    """The reprocess policy over these findings, with the users' ledgers (one read each), the
    tenant's seats and its groups' processing states."""
    processing = {g.id: g.processing_state for g in tenant.groups.values()}
    if mode.reread_processing:
        processing |= await current_processing_states(svc, findings)
    if mode.ledger_of_everyone:
        user_ids = list(tenant.users)
    else:
        user_ids = sorted({f.user_id for f in findings if f.user_id})
    # A scan page redone after a crash meets a reprocess the run queued and Graph did since
    # as made (`_act`), not as in flight; its seat still counts (`_promised_elsewhere`).
    done = not mode.scan_page
    in_flight = {u: ledger.seats_in_flight(u, now=svc.now(), done=done) for u in user_ids}
    return decide_users(
        tenant,
        findings,
        {u: ledger.history(u) for u in user_ids},
        in_flight,
        now=svc.now(),
        processing=processing,
        promised_elsewhere=_promised_elsewhere(svc, findings, ledger, in_flight, mode),
        failing_elsewhere=mode.failing,
    )


def _promised_elsewhere(
    svc: Services,
    findings: list[Finding],
    ledger: ReprocessLedger,
    read: Mapping[str, Collection[str]],
    mode: Mode,
) -> Counter[str]:
    """Seats promised per SKU to reprocesses not counted in `read` (the seats in flight of the
    users decided here): in flight tenant-wide (other recompute messages, the scan's other
    pages, earlier runs), and queued by this run since the ledger was read. Only a
    CountViolation to decide needs them (one ledger scan a run, or a resumed run's
    invocation)."""
    if not any(f.code == COUNT_VIOLATION for f in findings):
        return Counter(mode.promised)
    if mode.in_flight is None:
        mode.in_flight = ledger.seats_in_flight_by_user(now=svc.now())
        if mode.scan_page:
            # The ledger now shows every seat the run promised so far (in flight, or done
            # since its SKUs were read: `seats_counted_at`): a resumed run counted them twice.
            mode.promised.clear()
    promised = Counter(mode.promised)
    promised.update(
        sku for user_id, skus in mode.in_flight.items() for sku in skus - set(read.get(user_id, ()))
    )
    return promised


def _act(
    svc: Services,
    plan: ReprocessPlan,
    mode: Mode,
    writes: UserWrites,
    outcome: RecomputeOutcome,
    *,
    decisions: Iterable[tuple[str, Decision | None]],
    flush: Iterable[str],
    unused: Mapping[str, int],
    ledger: ReprocessLedger,
) -> set[str]:
    """Queue reprocesses (when allowed), delayed recomputes, observations; return the cause
    keys queued. First, reprocesses of the `flush` users that were recorded as queued but never
    sent (a crash or a failed send) are sent now. `unused`: seats per SKU neither consumed nor
    promised as Graph counted them for the decision (`LedgerWrites.queue_reprocess`, once for
    all the reprocesses decided). On a scan page, a user whose reprocess this run already
    queued (a page settled again after a crash before its checkpoint: the policy now sees it
    as done) counts as queued again, as a run that did not crash counted it, not as one to
    alert on or retry; its seat stays promised to the run's later pages. `decisions`: the
    plan's, and on a scan page None for users it left undecided."""
    now, run_id = svc.now(), mode.run_id
    for user_id in flush:
        writes.send_unsent(user_id, run_id, unused)
    queued: set[str] = set()
    to_queue: list[ReprocessNow] = []
    retry_at: dict[int, list[str]] = {}
    for user_id, decision in decisions:
        redone = mode.scan_page and not isinstance(decision, ReprocessNow)
        earlier = ledger.queued_by(user_id, run_id) if redone else []
        if earlier:
            queued.update(c.key for c in earlier)
            outcome.queued.append(user_id)
            # Its seat: the run's ledger read (`_promised_elsewhere`) counts it, in flight or
            # done since the run's SKUs were read; before that read, nothing counts seats.
        elif isinstance(decision, ReprocessNow):
            if decision.retry_at is not None and not mode.baseline:
                # its other causes wait (a group processing, a backoff): back for them then
                _retry_at(retry_at, decision.retry_at, now, user_id)
            group_ids = frozenset(c.group_id for c in decision.causes if c.group_id)
            blocked = svc.settings.write_blocked_reason(group_ids) or (
                BASELINE_BLOCK if mode.baseline else None
            )
            if blocked:
                writes.would_queue(decision, blocked, run_id)
                outcome.would_reprocess.append(user_id)
            else:
                to_queue.append(decision)
        elif mode.baseline:
            continue  # a baseline counts only what it would reprocess
        elif isinstance(decision, RetryLater):
            outcome.retry_later.append(user_id)
            _retry_at(retry_at, decision.not_before, now, user_id)
        elif isinstance(decision, AlertInstead):
            outcome.alerts.append(user_id)
    kept = set(writes.queue_reprocess(to_queue, run_id, unused)) if to_queue else set()
    for decision in to_queue:
        if decision.user_id in kept:
            queued.update(c.key for c in decision.causes)
            outcome.queued.append(decision.user_id)
            mode.promised.update(promised_seats(decision))
        else:
            outcome.would_reprocess.append(decision.user_id)
    for delay, user_ids in (retry_at if mode.retry else {}).items():
        writes.send_retries(user_ids, delay, run_id)
    crash_point(svc, "recompute.after_retry_sent")
    writes.observe(plan.observations())
    crash_point(svc, "recompute.after_observations")
    for group_alert in plan.groups:
        log.warning(
            "reprocess.group_alert",
            correlation_id=run_id,
            group_id=group_alert.group_id,
            sku_id=group_alert.sku_id,
            code=group_alert.code,
            users=len(group_alert.user_ids),
            reason=group_alert.reason,
        )
    return queued


def _retry_at(retry_at: dict[int, list[str]], when: datetime, now: datetime, user_id: str) -> None:
    """The user's delayed recompute, by its delay in whole minutes (rounded up)."""
    wait = (when - now).total_seconds()
    retry_at.setdefault(int(max(0.0, wait) // 60 + 1) * 60, []).append(user_id)


def _record(
    writes: UserWrites,
    tenant: Tenant,
    reports: Iterable[UserReport],
    mode: Mode,
    queued: set[str],
    outcome: RecomputeOutcome,
) -> None:
    """Reconcile each user's findings (+ DataLossRisk, the data-loss guard) with the ledger."""
    subjects = mode.open_subjects
    for report in writes.with_data_loss(list(reports), tenant):
        outcome.evaluated.append(report.user.id)
        if subjects is not None and not report.findings and report.user.id not in subjects:
            continue  # nothing found now, nothing open: nothing to record
        change = writes.reconcile_findings(
            report.user.id,
            report.findings,
            mode.run_id,
            [f.key for f in report.findings if cause_key(f) in queued],
        )
        outcome.new_findings.extend(change.new)
        outcome.resolved.extend(change.resolved)
