"""Two timers' jobs: after a directory sync, and the errors re-check.

* Directory sync: Entra Connect moves on-premises memberships in bursts; licensing reacts
  minutes later. A `SyncCompleted` message (posted by a script on the sync server) or a change
  of `organization.onPremisesLastSyncDateTime` (polled) queues one `DeltaSweep`.
* Errors re-check: nothing else notices that seats were freed or a usage location fixed, and
  Entra does not retry by itself. So users in groups with `hasMembersWithLicenseErrors`,
  users with pending, stale or plan-mismatch findings whose groups finished processing (at
  once, then ever less often while the finding stays open: `recheck_waits`), and users with
  open Graph-reported errors (a reprocess may have fixed them since) are recomputed.

The third timer's job, the poison watch, is `poison_watch`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import structlog

from shared.core.findings import (
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    REPORTED_CODES,
    STALE_GROUP_ASSIGNMENT,
)
from shared.core.graph_values import format_graph_time, graph_time_or_none
from shared.ports.directory import DirectoryError
from shared.ports.messages import DeltaSweep, RecomputeUsers, SyncCompleted, new_correlation_id
from shared.ports.tables import AlreadyExists, ConcurrencyConflict, Entity
from shared.service.crashpoints import crash_point
from shared.service.groups import nesting_flipped
from shared.service.licensed_refresh import refresh_licensed_groups
from shared.service.nested import record_nested_findings
from shared.service.recheck_waits import FinishedGroups, waiting_users
from shared.service.services import Services
from shared.service.stores import FindingsLedger, GroupMembers, LicensedGroups, ServiceState
from shared.service.stores.contention import WRITE_ATTEMPTS
from shared.service.user_reads import skus_for

log = structlog.get_logger(__name__)

LAST_SYNC = "last-sync"
"""servicestate: the newest sync time seen, posted or polled: the sweeps' watermark."""
GRAPH_SYNC = "graph-sync"
"""servicestate: Graph's own `onPremisesLastSyncDateTime` at the poll (`checkedAt`): when
directory sync last reached Entra. The sync server's posted times only trigger sweeps: its
script also runs on scheduler notices that moved nothing to Entra, and by hand."""
POSTED_AT = "postedAt"
"""The time a future-dated sync was posted with, beside its capped `completedAt`."""
SYNC_CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of ours a sync server's clock may run before its time is not believed."""
SWEEP_CLAIM_TIME = timedelta(seconds=30)
"""A sweep claimed (the watermark moved) and not marked sent after this long belongs to a
worker that died before sending it: a delivery of that sync then sends it. Host.json's queue
visibilityTimeout: the died worker's message comes back no sooner."""


# --------------------------------------------------------------------------- directory sync


def _record_sync(svc: Services, completed_at: str, source: str, correlation_id: str) -> bool:
    """Remember the newest sync time; True (and a sweep queued) when it is newer.

    The watermark moves only over the record as read (ETag, or insert when there is none):
    two deliveries of one sync at once (an HTTP retry after a lost 202) both read the old
    watermark, and only the one whose write lands sweeps; the other finds the sync recorded
    and completes without a second sweep. The record is written with the sweep marked owed
    (`sweepClaimedAt`) before the sweep is sent and cleared after: a send that fails hands
    the claim back at once, and one whose worker died is taken over by a delivery after
    `SWEEP_CLAIM_TIME`, so no sync is recorded without its sweep."""
    state = ServiceState(svc.tables.servicestate)
    moment = graph_time_or_none(completed_at)
    if moment is None:
        return False
    latest = svc.now() + SYNC_CLOCK_SKEW
    posted: dict[str, object] = {}
    if moment > latest:
        # A mistyped time or a sender's clock far ahead must not become the watermark: every
        # real sync before that moment would look old and sweep nothing. The time as posted
        # is kept beside it: the cap moves with our clock, and a redelivery of this sync
        # would otherwise be newer than its own capped watermark and sweep again.
        log.warning("sync.completed_in_future", completed_at=completed_at, source=source)
        posted = {POSTED_AT: completed_at}
        completed_at = format_graph_time(latest)
    for _ in range(WRITE_ATTEMPTS):
        previous = state.get(LAST_SYNC)
        fields = _sync_to_sweep(svc, previous, moment, completed_at, source, posted)
        if fields is None:
            return False
        try:
            if previous is None:
                etag = state.insert(LAST_SYNC, fields)
            else:
                etag = state.put(LAST_SYNC, fields, previous.etag)
        except (AlreadyExists, ConcurrencyConflict):
            continue  # moved by another delivery meanwhile: judged again over theirs
        _sweep_claimed(svc, state, fields, etag, source, correlation_id)
        return True
    log.info("sync.contended", completed_at=completed_at, source=source)
    return False


def _sync_to_sweep(
    svc: Services,
    previous: Entity | None,
    moment: datetime,
    completed_at: str,
    source: str,
    posted: dict[str, object],
) -> dict[str, object] | None:
    """The record claiming the sweep for this sync, or None when it is not ours to sweep: a
    sync no newer than the watermark whose sweep went out (or is being sent right now)."""
    now = svc.now()
    claim = {"completedAt": completed_at, "source": source, "sweepClaimedAt": now, **posted}
    if previous is None:
        return claim
    last = graph_time_or_none(str(previous.fields.get("completedAt", "")))
    if last is not None and last > now + SYNC_CLOCK_SKEW:
        last = None  # stored uncapped by a version before the cap: not believed either
    # The very future-dated sync recorded (capped) before: not newer, whatever the cap is now.
    again = moment == graph_time_or_none(str(previous.fields.get(POSTED_AT, "")))
    # Compare instants, not texts: "…:00Z", "…:00+00:00" and "…:00.000Z" are one time.
    if not again and (last is None or moment > last):
        return claim
    claimed_at = previous.fields.get("sweepClaimedAt")
    if isinstance(claimed_at, datetime) and now - claimed_at >= SWEEP_CLAIM_TIME:
        # The sweep of the recorded sync was claimed and never sent (its worker died).
        return {**previous.fields, "sweepClaimedAt": now}
    return None


def _sweep_claimed(
    svc: Services,
    state: ServiceState,
    fields: dict[str, object],
    etag: str,
    source: str,
    correlation_id: str,
) -> None:
    """Send the sweep this delivery claimed, then mark it sent (over our own write only)."""
    try:
        svc.send(
            DeltaSweep(reason=f"directory sync completed ({source})", correlation_id=correlation_id)
        )
    except Exception:
        # Not sent: the claim is handed back, so the redelivery sweeps at once.
        released = {**fields, "sweepClaimedAt": svc.now() - SWEEP_CLAIM_TIME}
        with contextlib.suppress(AlreadyExists, ConcurrencyConflict, LookupError):
            state.put(LAST_SYNC, released, etag)
        raise
    sent = {k: v for k, v in fields.items() if k != "sweepClaimedAt"}
    with contextlib.suppress(ConcurrencyConflict, LookupError):
        state.put(LAST_SYNC, sent, etag)  # a newer sync recorded meanwhile keeps its claim
    log.info("sync.completed", completed_at=fields["completedAt"], source=source,
             correlation_id=correlation_id)  # fmt: skip


def on_sync_completed(svc: Services, msg: SyncCompleted) -> bool:
    if msg.tenant_id.lower() != svc.settings.tenant_id.lower():
        log.warning("sync.foreign_tenant", tenant_id=msg.tenant_id)
        return False
    return _record_sync(svc, msg.completed_at, msg.source, msg.correlation_id)


async def watch_sync(svc: Services) -> bool:
    organization = await svc.directory.organization()
    if (organization or {}).get("onPremisesSyncEnabled") is False:
        # Turned off (the tenant went cloud-only): Graph keeps the last sync time, which no
        # sync will follow, so it is no longer watched (nor taken for a stale sync).
        svc.tables.servicestate.delete(ServiceState.META_PK, LAST_SYNC)
        svc.tables.servicestate.delete(ServiceState.META_PK, GRAPH_SYNC)
        return False
    completed_at = (organization or {}).get("onPremisesLastSyncDateTime")
    if not completed_at:
        return False
    text = _utc_text(str(completed_at))
    ServiceState(svc.tables.servicestate).put(
        GRAPH_SYNC, {"completedAt": text, "checkedAt": svc.now()}
    )
    return _record_sync(svc, text, "poll", new_correlation_id())


def last_directory_sync(svc: Services, believed_for: timedelta) -> datetime | None:
    """When directory sync last reached Entra: Graph's time, while a poll within
    `believed_for` read it; else (no poll lately) the newest time seen, posted or polled."""
    state = ServiceState(svc.tables.servicestate)
    polled = state.get(GRAPH_SYNC)
    checked = polled.fields.get("checkedAt") if polled else None
    if polled is not None and isinstance(checked, datetime) and svc.now() - checked <= believed_for:
        return graph_time_or_none(polled.fields.get("completedAt"))
    last = state.get(LAST_SYNC)
    return graph_time_or_none(last.fields.get("completedAt")) if last else None


def _utc_text(value: str) -> str:
    return value.replace("+00:00", "Z")


# --------------------------------------------------------------------------- errors re-check


WAITING_CODES = frozenset({PENDING_GROUP_ASSIGNMENT, STALE_GROUP_ASSIGNMENT, PLAN_MISMATCH})
"""Findings that wait on their group's processing (`recheck_waits` says when to look)."""


@dataclass
class RecheckOutcome:
    users: set[str] = field(default_factory=set)
    groups_with_errors: list[str] = field(default_factory=list)
    messages: int = 0


async def recheck_errors(svc: Services) -> RecheckOutcome:
    outcome = RecheckOutcome()
    await skus_for(svc, refresh=True)
    licensed = LicensedGroups(svc.tables.deltalinks)
    # Refreshes processing states and license configuration; a group that lost its licenses
    # leaves its members with stale assignments to re-read.
    writes: list[Callable[[], object]] = []
    config = licensed.configs()
    was_licensed = set(config)
    _, lost = await refresh_licensed_groups(svc, licensed, config, writes=writes)
    members = GroupMembers(svc.tables.groupmembers)
    for group_id in lost:
        outcome.users.update(members.members(group_id))
    for group_id in await _groups_with_license_errors(svc):
        outcome.groups_with_errors.append(group_id)
        outcome.users.update(await svc.directory.members_with_license_errors(group_id))
    crash_point(svc, "recheck.after_refresh")
    # The states just read from Graph (`config`), not the store's: the store is written only
    # at the end, and a group that finished processing since the last run is the point here.
    processing = {g: c.processing_state for g, c in config.items()}
    ledger, now = FindingsLedger(svc.tables.findings), svc.now()
    finished_groups = FinishedGroups(svc.tables.servicestate)
    finished = finished_groups.since(processing, now)
    # One read of the findings for both uses below (it was a whole-table scan each).
    open_rows = ledger.open_by_code(WAITING_CODES | REPORTED_CODES)
    waiting = [e for e in open_rows if e.fields.get("code") in WAITING_CODES]
    outcome.users.update(waiting_users(waiting, processing, finished, now))  # how often: there
    writes.append(partial(finished_groups.save, finished))
    # A Graph-reported error that went away (our reprocess, an admin's fix) leaves no group
    # with errors behind: re-read those users too, or their findings never resolve.
    outcome.users.update(
        e.partition_key for e in open_rows if e.fields.get("code") in REPORTED_CODES
    )
    correlation_id = new_correlation_id()
    batches = RecomputeUsers.batches(
        sorted(outcome.users), reason="errors re-check", correlation_id=correlation_id
    )
    outcome.messages = svc.send_all(batches)
    crash_point(svc, "recheck.after_send")
    # Only now what the refresh learnt is saved (groups that lost their licenses): a run that
    # failed before this point finds them again and is finished by the next run.
    # A group with nested groups licensed again, or no longer: its NestedGroupMember moves
    # (before the writes, whose stored licenses a later run would not see change).
    flipped = nesting_flipped(members, was_licensed, config)
    await record_nested_findings(svc, flipped, correlation_id, configs=config)
    for write in writes:
        write()
    log.info("errors.rechecked", correlation_id=correlation_id, users=len(outcome.users),
             groups_with_errors=len(outcome.groups_with_errors))  # fmt: skip
    return outcome


async def _groups_with_license_errors(svc: Services) -> list[str]:
    """The groups Graph lists with `hasMembersWithLicenseErrors`, or none when it will not say
    (one user saw the filter rejected with a 400): the re-check's other parts still run, and
    users in error from any group are recomputed by the nightly reconciliation."""
    try:
        return await svc.directory.groups_with_license_errors()
    except DirectoryError as exc:
        log.warning("errors.groups_with_errors_unavailable", status=exc.status, code=exc.code,
                    error=exc.loggable)  # fmt: skip
        return []
