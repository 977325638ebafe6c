"""Recompute users: read their licensing from Graph, evaluate, record findings, pick reprocesses.

For at most 100 users at a time: their states and memberships come from Graph (batched), the
licensed groups' configuration and the SKUs from the service's cache (SKUs refreshed when
older than `SKU_MAX_AGE`, or when a user holds one the cache does not know). The core
evaluates them exactly as `license-guard evaluate` would; the findings ledger records what is
new, persisting and resolved; the reprocess policy decides who to reprocess. In `observe`
mode (the default), or for groups outside the act allow-list, or with writes disabled, the
decision is only logged ("would reprocess X because Y") and nothing is queued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from shared.adapters.snapshot import parse_snapshot
from shared.catalog.products import catalog
from shared.core.evaluate import UserReport, evaluate
from shared.core.findings import (
    COUNT_VIOLATION,
    Finding,
)
from shared.core.model import Tenant
from shared.core.reprocess import (
    PROCESSING_GATED,
    AlertInstead,
    ReprocessNow,
    ReprocessPlan,
    RetryLater,
    TenantFacts,
    decide_reprocess,
)
from shared.ports.directory import JSON
from shared.ports.messages import RecomputeUsers, ReprocessUser
from shared.service.crashpoints import crash_point
from shared.service.dataloss import alert_data_loss, with_data_loss
from shared.service.services import Services
from shared.service.stores import (
    FindingsLedger,
    LicensedGroups,
    ReprocessLedger,
    ServiceState,
    cause_token,
)

log = structlog.get_logger(__name__)

SKU_MAX_AGE = timedelta(hours=1)


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


async def skus_for(svc: Services, *, refresh: bool = False) -> list[JSON]:
    """Subscribed SKUs from the cache, refreshed from Graph when stale or asked."""
    state = ServiceState(svc.tables.servicestate)
    skus, refreshed = state.skus()
    if refresh or not skus or refreshed is None or svc.now() - refreshed > SKU_MAX_AGE:
        skus = await svc.directory.subscribed_skus()
        state.save_skus(skus, svc.now())
    return skus


async def recompute_users(svc: Services, msg: RecomputeUsers) -> RecomputeOutcome:
    """Read the users, evaluate them, decide reprocesses, act on them, record the findings."""
    outcome = RecomputeOutcome()
    users, tenant = await _read_users(svc, msg.user_ids)
    evaluation = evaluate(tenant, *catalog().names_for(tenant))
    findings = [f for report in evaluation.users for f in report.findings]
    plan = await decide(svc, tenant, findings, list(users))
    crash_point(svc, "recompute.after_read")
    queued = act_on(svc, plan, msg.correlation_id, outcome, flush=msg.user_ids)
    record_findings(svc, evaluation.users, msg.correlation_id, queued, outcome)
    crash_point(svc, "recompute.after_findings")
    resolve_gone(svc, [u for u in msg.user_ids if u not in users], msg.correlation_id, outcome)
    crash_point(svc, "recompute.after_gone")
    # The ledger is the data-loss alert's outbox: findings not yet alerted are mailed now,
    # or by the next tenant-alerts run if Graph refuses (alert_data_loss_owed).
    await alert_data_loss(svc, outcome.new_findings)
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


async def _read_users(svc: Services, user_ids: Sequence[str]) -> tuple[dict[str, JSON], Tenant]:
    """The users from Graph (batched) as a small tenant: their memberships, the cached licensed
    groups and SKUs (refreshed when a user or group names one the cache does not know)."""
    users = await svc.directory.users_by_id(user_ids)
    memberships = await svc.directory.member_of(list(users))
    groups = LicensedGroups(svc.tables.deltalinks).groups()
    skus = await skus_for(svc)
    if _unknown_skus(users, groups, skus):
        skus = await skus_for(svc, refresh=True)
    unknown_groups = _groups_in_states(users) - groups.keys()
    if unknown_groups:
        groups |= await svc.directory.groups_by_id(sorted(unknown_groups))
    document: dict[str, Any] = {
        "subscribedSkus": skus,
        "groups": [
            g
            | {
                "members": [
                    {"@odata.type": "#microsoft.graph.user", "id": u}
                    for u in users
                    if g["id"] in memberships.get(u, ())
                ]
            }
            for g in groups.values()
        ],
        "users": list(users.values()),
    }
    return users, parse_snapshot(document).tenant


async def decide(
    svc: Services,
    tenant: Tenant,
    findings: list[Finding],
    user_ids: list[str],
    *,
    reread_processing: bool = True,
    promised_elsewhere: Mapping[str, int] | None = None,
) -> ReprocessPlan:
    """The reprocess policy over these users' findings, with their ledgers and the tenant's
    seats and group processing states.

    `reread_processing=False` trusts the tenant's group processing states (the caller read the
    groups just now); `promised_elsewhere` counts seats already promised per SKU to reprocesses
    queued outside `user_ids` (a scan deciding page by page)."""
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    processing = {g.id: g.processing_state for g in tenant.groups.values()}
    if reread_processing:
        processing |= await _current_processing_states(svc, findings)
    history = {u: ledger.history(u) for u in user_ids}
    # A seat promised to a queued reprocess is not free yet in consumedUnits, and that
    # user's CountViolation is being handled: decide neither again (duplicate messages).
    in_flight = {u: ledger.seats_in_flight(u) for u in user_ids}
    promised = Counter(sku for skus in in_flight.values() for sku in skus)
    promised.update(promised_elsewhere or {})
    facts = TenantFacts(
        now=svc.now(),
        free_seats={
            s.id: s.prepaid.enabled - s.consumed - promised[s.id] for s in tenant.skus.values()
        },
        group_processing=processing,
    )
    undecided = [
        f
        for f in findings
        if not (f.code == COUNT_VIOLATION and f.sku_id in in_flight.get(f.user_id or "", ()))
    ]
    return decide_reprocess(undecided, history, facts)


def act_on(
    svc: Services,
    plan: ReprocessPlan,
    correlation_id: str,
    outcome: RecomputeOutcome,
    *,
    retry: bool = True,
    flush: Iterable[str] = (),
) -> set[str]:
    """Queue reprocesses (when allowed), delayed recomputes (unless `retry` is off),
    observations; return cause keys queued. First, reprocesses of the `flush` users that
    were recorded as queued but never sent (a crash or a failed send) are sent now."""
    now = svc.now()
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    for user_id in flush:
        _send_unsent(svc, ledger, user_id, correlation_id)
    queued: set[str] = set()
    retry_at: dict[int, list[str]] = {}
    for user_id, decision in plan.users.items():
        if isinstance(decision, ReprocessNow):
            if _queue_reprocess(svc, ledger, decision, correlation_id, now):
                queued.update(c.key for c in decision.causes)
                outcome.queued.append(user_id)
            else:
                outcome.would_reprocess.append(user_id)
        elif isinstance(decision, RetryLater):
            outcome.retry_later.append(user_id)
            wait = (decision.not_before - now).total_seconds()
            retry_at.setdefault(int(max(0.0, wait) // 60 + 1) * 60, []).append(user_id)
        elif isinstance(decision, AlertInstead):
            outcome.alerts.append(user_id)
    for delay, user_ids in (retry_at if retry else {}).items():
        # One delayed recompute per minute of delay and 100 users, not one per user.
        for batch in RecomputeUsers.batches(
            user_ids, reason="retry after backoff", correlation_id=correlation_id
        ):
            svc.send(batch, delay_seconds=delay)
    crash_point(svc, "recompute.after_retry_sent")
    for user_id, attempts in plan.observations().items():
        ledger.observe(user_id, attempts)
    crash_point(svc, "recompute.after_observations")
    for group_alert in plan.groups:
        log.warning(
            "reprocess.group_alert",
            correlation_id=correlation_id,
            group_id=group_alert.group_id,
            sku_id=group_alert.sku_id,
            code=group_alert.code,
            users=len(group_alert.user_ids),
            reason=group_alert.reason,
        )
    return queued


def record_findings(
    svc: Services,
    reports: Iterable[UserReport],
    run_id: str,
    queued: set[str],
    outcome: RecomputeOutcome,
    *,
    skip: Callable[[UserReport], bool] | None = None,
) -> None:
    """Reconcile each user's findings with the ledger (new, persisting, resolved); `skip`
    leaves out users the caller knows have nothing to record (no findings, none open)."""
    now = svc.now()
    ledger = FindingsLedger(svc.tables.findings)
    for report in with_data_loss(svc, list(reports)):  # + DataLossRisk (the data-loss guard)
        outcome.evaluated.append(report.user.id)
        if skip is not None and skip(report):
            continue
        change = ledger.reconcile(
            report.user.id,
            report.findings,
            now=now,
            run_id=run_id,
            reprocess_queued=[f.key for f in report.findings if _cause_key(f) in queued],
        )
        outcome.new_findings.extend(change.new)
        outcome.resolved.extend(change.resolved)


def resolve_gone(
    svc: Services, user_ids: Iterable[str], run_id: str, outcome: RecomputeOutcome
) -> None:
    """Deleted (or not yet replicated) users: their open findings no longer apply."""
    ledger = FindingsLedger(svc.tables.findings)
    for user_id in user_ids:
        change = ledger.reconcile(user_id, [], now=svc.now(), run_id=run_id)
        outcome.gone.append(user_id)
        outcome.resolved.extend(change.resolved)


def _queue_reprocess(
    svc: Services,
    ledger: ReprocessLedger,
    decision: ReprocessNow,
    correlation_id: str,
    now: Any,
) -> bool:
    """Queue the reprocess when writes are allowed; otherwise log what would have happened."""
    group_ids = frozenset(c.group_id for c in decision.causes if c.group_id)
    blocked = svc.settings.write_blocked_reason(group_ids)
    if blocked:
        log.info(
            "reprocess.would_queue",
            correlation_id=correlation_id,
            user_id=decision.user_id,
            because=decision.reason,
            blocked_by=blocked,
        )
        return False
    tokens = []
    for cause in decision.causes:
        if ledger.queue(decision.user_id, cause, now=now, correlation_id=correlation_id):
            tokens.append(cause_token(cause))
    if not tokens:
        return False  # every cause already queued by a duplicate message: nothing new to do
    # Recorded as queued-but-unsent first (an outbox): a crash or a failed send here leaves
    # it for `_send_unsent` on the redelivery, instead of a "queued" that is never sent.
    crash_point(svc, "recompute.after_ledger_queued")
    svc.send(
        ReprocessUser(
            user_id=decision.user_id,
            causes=tuple(tokens),
            reason=decision.reason,
            correlation_id=correlation_id,
        )
    )
    crash_point(svc, "recompute.after_reprocess_sent")
    ledger.mark_sent(decision.user_id, tokens)
    log.info(
        "reprocess.queued",
        correlation_id=correlation_id,
        user_id=decision.user_id,
        because=decision.reason,
    )
    return True


def _send_unsent(svc: Services, ledger: ReprocessLedger, user_id: str, correlation_id: str) -> None:
    """Send the user's reprocess causes recorded as queued but never sent. A duplicate
    message is harmless (the worker's claim lets one call through), a lost one is not."""
    unsent = ledger.unsent(user_id)
    if not unsent:
        return
    svc.send(
        ReprocessUser(
            user_id=user_id,
            causes=tuple(unsent),
            reason="queued earlier, never sent",
            correlation_id=correlation_id,
        )
    )
    ledger.mark_sent(user_id, unsent)
    log.info("reprocess.resent", correlation_id=correlation_id, user_id=user_id,
             causes=len(unsent))  # fmt: skip


async def _current_processing_states(
    svc: Services, findings: list[Finding]
) -> dict[str, str | None]:
    """Re-read the processing state of the groups behind pending, stale or mismatched paths.

    The stored state is only as fresh as the last sweep or re-check, and a membership change
    queues the group for processing again: deciding on a stale "ProcessingComplete" would
    reprocess every new joiner before Entra has even looked at it. One batched read instead.
    """
    group_ids = sorted({f.group_id for f in findings if f.code in PROCESSING_GATED and f.group_id})
    if not group_ids:
        return {}
    fresh = await svc.directory.groups_by_id(group_ids)
    licensed = LicensedGroups(svc.tables.deltalinks)
    for group in fresh.values():
        if group.get("assignedLicenses"):
            licensed.save_group(group)
    return {g: _processing_state(group.get("licenseProcessingState")) for g, group in fresh.items()}


def _processing_state(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("state")
    return str(value) if value else None


def _cause_key(finding: Finding) -> str:
    return f"{finding.code}|{finding.sku_id or '-'}|{finding.group_id or '-'}"


def _unknown_skus(users: dict[str, JSON], groups: dict[str, JSON], skus: list[JSON]) -> bool:
    """A SKU bought (or assigned) since the cache was filled: refresh rather than fail."""
    known = {s["skuId"] for s in skus}
    held = (
        state.get("skuId")
        for user in users.values()
        for state in user.get("licenseAssignmentStates") or ()
    )
    assigned = (
        lic.get("skuId") for g in groups.values() for lic in g.get("assignedLicenses") or ()
    )
    return any(sku_id not in known for sku_id in (*held, *assigned))


def _groups_in_states(users: dict[str, JSON]) -> set[str]:
    return {
        state["assignedByGroup"]
        for user in users.values()
        for state in user.get("licenseAssignmentStates") or ()
        if state.get("assignedByGroup")
    }
