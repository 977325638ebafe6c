"""The nightly reconciliation: the safety net that makes the service right when notifications
were lost. This module is its entry (the timer's call, a CLI run) and the order of its phases.

One scan of the whole tenant, checkpointed so it survives a killed host:

1. ``groups`` (here): subscribed SKUs, the organization, licensed groups
   (`assignedLicenses/any()`) and their user members, page by page. Kept with the run in blob
   storage (``runs/<runId>/groups.json``), so a resumed run evaluates against the same
   memberships - unless they were read more than `GROUPS_MAX_AGE` ago (a run resumed on a
   later night, every firing of its own night stopped or failed): then they are read again
   before the run goes on, and the users it has left are judged on the tenant as it is.
2. ``users`` (`pages`): ALL users, page by page, each page settled by the user pipeline
   (`shared.service.users.settle`: findings reconciled with the ledger, the reprocess policy
   applied); the page's report parts go to blob storage and the checkpoint (`servicestate`:
   runId, phase, next link, counters) moves past it.
3. ``finish`` (`finish`, `reports`): SKU findings from the whole demand, users gone since
   they were last seen, the reports assembled (assignment paths CSV + JSON, configuration
   snapshot and its drift with the audit-log actor, migration plan, self-check), old reports
   pruned, and the summary mailed once per date (a baseline summary the first time).

A run belongs to a UTC date. A timer firing on a date whose run finished does nothing, nor
does one less than `SAME_NIGHT` after a finished run started (a schedule crossing midnight UTC); one
firing while a run is unfinished resumes it. Memory stays bounded by a page of users plus the
member index (user id -> licensed group ids).

The first reconciliation after install (or a BASELINE reset, owned by the alerts) is a
baseline: findings are recorded and observations stored, but nothing is queued.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog

from shared.ports.blobs import BlobStore
from shared.ports.tables import Entity
from shared.service.alerts import summaries as alerts
from shared.service.crashpoints import crash_point
from shared.service.reconcile.dry_run import dry_run
from shared.service.reconcile.finish import finish, prune
from shared.service.reconcile.pages import read_users
from shared.service.reconcile.run_state import (
    DONE,
    FINISH,
    GROUPS,
    LAST,
    USERS,
    Counters,
    Options,
    ReconcileResult,
    Run,
    Scan,
    Stop,
    last_fields,
    load_run,
)
from shared.service.reconcile.scan import read_world
from shared.service.services import Services
from shared.service.stores import ServiceState

log = structlog.get_logger(__name__)

RUN_BUDGET = timedelta(minutes=25)
"""Flex Consumption stops a function after 30 minutes by default: checkpoint and stop before."""
SAME_NIGHT = timedelta(hours=12)
"""A finished run started less than this long ago was tonight's, whatever the date now: no new
run starts (`same_night`). More than a night's firings span, less than a day."""
GROUPS_MAX_AGE = timedelta(hours=12)
"""A resumed run reads the licensed groups again when it read them longer ago than this: the
same night's later firings (03:00, 04:00) go on with them, a later night's do not."""


async def run_nightly(svc: Services, *, past_due: bool = False) -> ReconcileResult:
    """The timer's call: today's run (or the unfinished one) within the time budget."""
    if past_due:
        log.info("reconcile.past_due", reason="the timer fired late; the run goes ahead")
    blobs = svc.blobs
    options = Options(
        deadline=svc.now() + RUN_BUDGET, retention_days=svc.settings.report_retention_days
    )
    return await reconcile_nightly(svc, blobs, options)


async def reconcile_nightly(
    svc: Services, blobs: BlobStore, options: Options | None = None
) -> ReconcileResult:
    """Run (or resume) today's reconciliation; see the module docstring."""
    opts = options or Options()
    state = ServiceState(svc.tables.servicestate)
    now = svc.now()
    today = now.date().isoformat()
    run = load_run(state)
    resumed = run is not None and run.phase != DONE and not opts.dry_run
    if run is not None and run.phase == DONE and not opts.dry_run:
        record_done(Scan(svc, blobs, state, run, opts))
    if not resumed:
        last = state.get(LAST)
        done_today = last is not None and last.fields.get("date") == today
        if last is not None and (done_today or same_night(last, now)) and not opts.force:
            reason = "already reconciled today" if done_today else "already reconciled tonight"
            log.info("reconcile.skipped", date=today, reason=reason)
            return ReconcileResult(str(last.fields.get("runId")), today, "skipped")
        run = Run(
            run_id=f"{today}-{uuid.uuid4().hex[:8]}",
            date=today,
            started_at=now,
            phase=GROUPS,
            next_link=None,
            baseline=alerts.baseline_pending(svc),  # the alerts own BASELINE
            counters=Counters(),
            rerun=done_today,
        )
    assert run is not None
    if opts.dry_run:
        return await dry_run(svc, run, opts)
    log.info(
        "reconcile.started" if not resumed else "reconcile.resumed",
        run_id=run.run_id,
        phase=run.phase,
        baseline=run.baseline,
        pages=run.counters.pages,
    )
    scan = Scan(svc, blobs, state, run, opts)
    try:
        if run.phase == GROUPS:
            await read_groups(scan)
        elif resumed and now - (run.groups_read_at or run.started_at) > GROUPS_MAX_AGE:
            await read_groups_again(scan)
        if run.phase == USERS:
            await read_users(scan)
        if run.phase == FINISH:
            return await finish(scan, resumed)
    except Stop:
        log.info("reconcile.stopped", run_id=run.run_id, pages=run.counters.pages)
        return ReconcileResult(run.run_id, run.date, "stopped", resumed, run.baseline)
    raise AssertionError(f"unknown phase {run.phase}")  # pragma: no cover


def same_night(last: Entity, now: datetime) -> bool:
    """Whether the last finished run started less than `SAME_NIGHT` ago: a firing of a
    schedule that crosses midnight UTC (23:00, 00:00, 01:00) is on a new date past midnight,
    yet its night's run is done (starting the next date's run there ran the first night
    twice, and every night's run after midnight). A run resumed and finished on a later night
    started the night before: that night still gets its own run. A record written before the
    start was kept goes by its date alone."""
    started = last.fields.get("startedAt")
    return isinstance(started, datetime) and abs(now - started) < SAME_NIGHT


def record_done(scan: Scan) -> None:
    """A run marked done whose host died before it was recorded as its date's last: record it
    and prune its working set (the finish's last steps), so the date is not scanned again."""
    last = scan.state.get(LAST)
    if last is not None and last.fields.get("runId") == scan.run.run_id:
        return
    log.info("reconcile.recorded_late", run_id=scan.run.run_id, date=scan.run.date)
    scan.state.put(LAST, last_fields(scan.run, scan.svc.now()))
    prune(scan)


async def read_groups(scan: Scan) -> None:
    """Phase 1: the licensed world, kept with the run so a resume evaluates against it."""
    scan.checkpoint()
    read_at = scan.svc.now()  # before the read: a change during it counts as after it
    scan.keep_world(await read_world(scan.svc.directory, scan.opts.progress))
    scan.run.groups_read_at = read_at
    scan.run.phase = USERS
    scan.checkpoint()
    crash_point(scan.svc, "reconcile.after_groups")


async def read_groups_again(scan: Scan) -> None:
    """A run resumed on a later night: the licensed world read again, so the users it has left
    are not judged on memberships and seat counts a day old or more. Seats its earlier pages
    promised are dropped with the old counts: those reprocesses done since are in the new
    consumed counts, those still in flight in the ledger the pages read."""
    log.info("reconcile.groups_reread", run_id=scan.run.run_id,
             read_at=scan.run.groups_read_at or scan.run.started_at)  # fmt: skip
    read_at = scan.svc.now()
    scan.keep_world(await read_world(scan.svc.directory, scan.opts.progress))
    scan.run.groups_read_at = read_at
    scan.run.counters.promised.clear()
    scan.checkpoint()
