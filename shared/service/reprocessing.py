"""The reprocess worker: one `reprocessLicenseAssignment` call per user and cause, braked.

Safety first: nothing is written unless settings allow it at the moment of the call (mode
`act`, kill switch off, allow-list), even if the message was queued earlier. Every call goes
through a tenant-wide brake: a token bucket of `REPROCESS_RATE_PER_MIN` calls per minute
(well under Graph's identity write budget of 3,000 per 150 s) and `REPROCESS_DAILY_CAP` calls
per UTC day, kept in `servicestate` with optimistic concurrency so all instances share it.
Calls are sent with `x-ms-throttle-priority: Low`.

Duplicates never call twice: the causes are claimed in the reprocess ledger first, under a
lease; a cause already done is skipped, one leased right now is looked at again when the lease
ends (its holder may have died: never dropped). Any failure hands the lease back. When an
earlier attempt may have reached Graph (lease expired mid-call, a 5xx or dropped connection),
the directory audit log is asked first, so a lost response does not mean a second call.
A 429 re-enqueues the message with the Retry-After as its visibility delay and completes the
original, so throttling does not burn dequeue attempts; other transient errors raise, and the
host retries (then poisons). A 401/403 (the write permission is missing) is not retried: the
causes are recorded as refused, the message completes, and the app's reprocesses pause; a 403
for one user the app's permission does not reach pauses nothing and is that user's finding
(`shared.service.refused_writes`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog

from shared.core.graph_values import format_graph_time
from shared.ports.directory import DirectoryError
from shared.ports.messages import ReprocessUser
from shared.ports.tables import AlreadyExists, ConcurrencyConflict, Entity
from shared.service.crashpoints import crash_point
from shared.service.refused_writes import (
    REFUSED_STATUSES,
    RefusalGate,
    accepted,
    end_refusal,
    record_refusal,
    record_user_refusal,
    refusal_gate,
    refused_for_user,
)
from shared.service.services import Services
from shared.service.stores import (
    DONE,
    GONE,
    QUEUED,
    REFUSED,
    Claim,
    ReprocessLedger,
    ServiceState,
)
from shared.service.throttled import send_again_after

log = structlog.get_logger(__name__)

BRAKE = "reprocess-brake"


@dataclass(frozen=True, slots=True)
class ReprocessOutcome:
    status: str
    """called | gone | duplicate | busy | verified | blocked | braked | throttled | refused"""
    delay_seconds: float = 0.0


async def reprocess_user(
    svc: Services, msg: ReprocessUser, *, by_app: bool = True
) -> ReprocessOutcome:
    """One message's call. `by_app` False: an admin's own sign-in calls (`license-guard
    reprocess`), which the app's refusal pause does not hold back and whose 401/403 raises."""
    now = svc.now()
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    groups = frozenset(
        str(e.fields["groupId"])
        for e in (svc.tables.reprocessledger.get(msg.user_id, t) for t in msg.causes)
        if e is not None and e.fields.get("groupId")
    )
    blocked = svc.settings.write_blocked_reason(groups)
    if blocked:
        ledger.release(msg.user_id, msg.causes)  # not an attempt: may be queued again
        log.info("reprocess.blocked", correlation_id=msg.correlation_id, user_id=msg.user_id,
                 reason=blocked)  # fmt: skip
        return ReprocessOutcome("blocked")
    # A manual request (no causes) has nothing to claim; duplicates of it call again.
    claim = ledger.claim(msg.user_id, msg.causes, now=now) if msg.causes else Claim()
    claimed = claim.entities
    if msg.causes and not claimed:
        if claim.busy_until is None:
            log.info("reprocess.duplicate", correlation_id=msg.correlation_id,
                     user_id=msg.user_id)  # fmt: skip
            return ReprocessOutcome("duplicate")
        # Leased by another attempt, which may have died: look again when the lease ends.
        wait = max(1.0, (claim.busy_until - now).total_seconds())
        svc.send(msg, delay_seconds=wait)
        log.info("reprocess.busy", correlation_id=msg.correlation_id, user_id=msg.user_id,
                 retry_in=round(wait))  # fmt: skip
        return ReprocessOutcome("busy", wait)
    crash_point(svc, "reprocess.after_claim")
    try:
        if claim.uncertain_since is not None and await _already_called(
            svc, msg.user_id, claim.uncertain_since
        ):
            ledger.settle(claimed, DONE, now=svc.now())
            log.info("reprocess.verified", correlation_id=msg.correlation_id,
                     user_id=msg.user_id)  # fmt: skip
            return ReprocessOutcome("verified")
        gate = refusal_gate(svc, now) if by_app else RefusalGate()
        wait = gate.wait or take_brake_token(svc, now)
    except BaseException:
        ledger.settle(claimed, QUEUED, now=now)  # the lease goes back: the retry may claim it
        raise
    crash_point(svc, "reprocess.after_brake")
    if wait > 0:
        ledger.settle(claimed, QUEUED, now=now)
        svc.send(msg, delay_seconds=wait)
        log.info("reprocess.braked", correlation_id=msg.correlation_id, user_id=msg.user_id,
                 delay_seconds=round(wait, 1), writes_refused=gate.wait > 0)  # fmt: skip
        return ReprocessOutcome("braked", wait)
    try:
        found = await svc.directory.reprocess_license_assignment(msg.user_id)
    except DirectoryError as exc:
        if by_app and exc.status in REFUSED_STATUSES:
            return await _refused(svc, msg, ledger, claimed, exc, now, probe=gate.probe)
        # A 429 or another 4xx (Graph refused it) never reached the user; a 5xx or a dropped
        # connection (the adapter's 503) may have: the retry verifies first.
        ledger.settle(claimed, QUEUED, now=now, uncertain=exc.status >= 500)
        if exc.status == 429:
            delay = send_again_after(svc, msg, exc)
            log.warning("reprocess.throttled", correlation_id=msg.correlation_id,
                        user_id=msg.user_id, retry_after=delay)  # fmt: skip
            return ReprocessOutcome("throttled", delay)
        raise
    except BaseException:
        ledger.settle(claimed, QUEUED, now=now, uncertain=True)
        raise
    crash_point(svc, "reprocess.after_call")
    ledger.settle(claimed, DONE if found else GONE, now=svc.now())
    accepted(svc, msg.user_id, svc.now(), probe=gate.probe)
    crash_point(svc, "reprocess.after_settle")
    log.info(
        "reprocess.called",
        correlation_id=msg.correlation_id,
        user_id=msg.user_id,
        because=msg.reason,
        user_found=found,
    )
    return ReprocessOutcome("called" if found else "gone")


async def _refused(
    svc: Services,
    msg: ReprocessUser,
    ledger: ReprocessLedger,
    claimed: list[Entity],
    refused: DirectoryError,
    now: datetime,
    *,
    probe: bool,
) -> ReprocessOutcome:
    """Graph refused the app's write (401/403): retrying will not help, so the causes are
    recorded as refused and the app's reprocesses pause, unless the app holds the permission
    and Graph refused this user only (`shared.service.refused_writes`)."""
    user_only = await refused_for_user(svc, refused)
    # first: a crash before the settle still alerts
    if user_only:
        record_user_refusal(svc, msg.user_id, refused, now)
        if probe:
            end_refusal(svc, now)  # the app holds the permission again
    else:
        record_refusal(svc, refused, now)
    ledger.settle(claimed, REFUSED, now=now)
    log.error("reprocess.refused", correlation_id=msg.correlation_id, user_id=msg.user_id,
              status=refused.status, error=refused.loggable, user_only=user_only)  # fmt: skip
    return ReprocessOutcome("refused")


REPROCESS_AUDIT = "Change user license"
SERVICE_ACTORS = ("group-based licensing", "azure ad connect", "entra connect")
"""Lower-case parts of the display names Entra's own services write audit entries under."""


async def _already_called(svc: Services, user_id: str, since: datetime) -> bool:
    """Did an earlier attempt's call reach Graph? Its audit entry says so (our app changed
    this user's licenses since the attempt began). If the log cannot tell (not there yet,
    or unreadable), call again: reprocessing twice is harmless, not reprocessing is not."""
    try:
        entries = await svc.directory.directory_audits(
            format_graph_time(since - timedelta(minutes=1)), (REPROCESS_AUDIT,)
        )
    except DirectoryError as exc:
        log.warning("reprocess.verify_unavailable", user_id=user_id, error=exc.loggable)
        return False
    # The identity that calls Graph, not storage's: the two may differ (worker_credentials).
    ours = svc.settings.graph_client_id
    for entry in entries:
        if user_id not in entry.target_ids or not entry.by_app:
            continue
        if ours and (entry.app_id or "").lower() == ours.lower():
            return True
        # Without our client id: any app but Microsoft's own licensing and sync services,
        # whose "Change user license" entries are the processing we asked for, not our call.
        name = (entry.app_name or "").lower()
        if not ours and not any(actor in name for actor in SERVICE_ACTORS):
            return True
    return False


def take_brake_token(svc: Services, now: datetime) -> float:
    """Take one call from the tenant-wide budget; 0 if granted, else seconds to wait."""
    rate = max(1, svc.settings.reprocess_rate_per_min) / 60.0
    capacity = float(max(1, svc.settings.reprocess_rate_per_min))
    cap = svc.settings.reprocess_daily_cap
    state = ServiceState(svc.tables.servicestate)
    for _ in range(8):
        entity = state.get(BRAKE)
        if entity is None:
            with contextlib.suppress(AlreadyExists):
                state.insert(BRAKE, {"tokens": capacity, "at": now, "day": _day(now), "count": 0})
            continue
        fields = entity.fields
        last = fields.get("at")
        elapsed = (now - last).total_seconds() if isinstance(last, datetime) else 0.0
        stored = fields.get("tokens", capacity)
        tokens = capacity if not isinstance(stored, int | float) else float(stored)
        tokens = min(capacity, tokens + max(0.0, elapsed) * rate)
        stored_count = fields.get("count", 0)
        day = str(fields.get("day"))
        count = stored_count if isinstance(stored_count, int) else 0
        counted = _counted_day(fields.get("day"))
        if counted is None or counted < now.date():
            day, count = _day(now), 0  # a new UTC day (never back: see `_counted_day`)
        if count >= cap:
            on = max(counted, now.date()) if counted else now.date()
            tomorrow = datetime(on.year, on.month, on.day, tzinfo=now.tzinfo) + timedelta(1)
            return (tomorrow - now).total_seconds()
        turn = fields.get("turn")
        if tokens < 1.0 - TOKEN_SLACK:
            wait = _next_turn(turn, now, (1.0 - tokens) / rate, 1.0 / rate)
            try:
                state.put(BRAKE, fields | {"turn": now + timedelta(seconds=wait)}, etag=entity.etag)
            except ConcurrencyConflict:
                continue
            return wait
        new = {"tokens": tokens - 1.0, "at": now, "day": day, "count": count + 1, "turn": turn}
        try:
            state.put(BRAKE, new, etag=entity.etag)
        except ConcurrencyConflict:
            continue
        return 0.0
    return 1.0  # heavy contention: try again shortly


TOKEN_SLACK = 1e-6
"""A message back at its turn finds its token refilled to within float rounding."""


def _next_turn(turn: object, now: datetime, refill: float, interval: float) -> float:
    """Seconds until a braked call's turn: when its token has refilled, and after every call
    braked before it (`turn`, the last turn given), one `interval` apart. Told only when the
    next token refills, every waiting message came back at once and all but one were braked
    again: N waiting messages ran N²/2 times."""
    if isinstance(turn, datetime) and turn > now:
        return max(refill, (turn - now).total_seconds() + interval)
    return refill


def _day(now: datetime) -> str:
    return now.date().isoformat()


def _counted_day(stored: object) -> date | None:
    """The UTC day the stored count is of (None: none readable). An instance whose clock is
    seconds behind at midnight keeps counting on the later day another instance stored:
    moved back to "yesterday", the next call found a new day and started from 0 again."""
    try:
        return date.fromisoformat(str(stored))
    except ValueError:
        return None
