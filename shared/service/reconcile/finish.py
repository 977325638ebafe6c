"""The scan's finish: SKU findings from the whole demand, nested-group findings, users gone
since they were last seen, the reports assembled, the summary mailed once per date (a
baseline summary the first time), and the run marked done before its working set is pruned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import timedelta

import orjson
import structlog

from shared.catalog.products import catalog
from shared.core.dataloss import DATA_LOSS_RISK
from shared.core.findings import Names
from shared.core.nightly_summary import GroupErrors, NightlySummary, SeatForecast
from shared.core.sku_findings import sku_findings
from shared.service.alerts import summaries as alerts
from shared.service.crashpoints import crash_point
from shared.service.gone_capabilities import prune_gone_capabilities
from shared.service.nested import nested_group_findings
from shared.service.reconcile.owed_summaries import (
    owe_summary,
    send_owed_summaries,
    summary_sent_for,
)
from shared.service.reconcile.pages import settle_page
from shared.service.reconcile.reports import (
    assemble_paths,
    configuration,
    health_page,
    migration_reports,
    self_check_report,
)
from shared.service.reconcile.retention import prune_history
from shared.service.reconcile.run_state import (
    DONE,
    LAST,
    REPORTS,
    RUNS,
    ReconcileResult,
    Scan,
    blob_names,
    last_fields,
)
from shared.service.reconcile.scan import member_index, open_subjects, unseen_users
from shared.service.reconcile.unseen_records import forget_unseen_records
from shared.service.stores import FindingsLedger
from shared.service.stores.pending_retries import PendingRetries
from shared.service.users import RecomputeOutcome, resolve_gone

log = structlog.get_logger(__name__)


async def finish(scan: Scan, resumed: bool) -> ReconcileResult:
    svc, run, c = scan.svc, scan.run, scan.run.counters
    world = scan.load_world()
    now = svc.now()
    tenant = world.config_tenant()
    names = Names(tenant)
    ledger = FindingsLedger(svc.tables.findings)
    unseen = unseen_users(svc, run.started_at)
    skipped = await settle_skipped(scan, unseen)
    sku_reports = []
    for sku in tenant.skus.values():
        found = sku_findings(sku, c.demand[sku.id], names)
        ledger.reconcile(f"sku:{sku.id}", found, now=now, run_id=run.run_id)
        c.findings_by_code.update(f.code for f in found)
        sku_reports.append((sku, found))
    group_reports = nested_group_findings(world)
    for group_id, found in group_reports.items():
        ledger.reconcile(f"group:{group_id}", found, now=now, run_id=run.run_id)
        c.findings_by_code.update(f.code for f in found)
    for subject in unread_subjects(open_subjects(svc), tenant.skus.keys(), world.groups.keys()):
        ledger.reconcile(subject, [], now=now, run_id=run.run_id)
    crash_point(svc, "reconcile.after_sku_findings")
    gone = RecomputeOutcome()
    resolve_gone(
        svc,
        [u for u in unseen if u not in skipped],
        run.run_id,
        gone,
        read_at=run.groups_read_at or run.started_at,
    )
    await forget_unseen_records(scan)  # records of gone users with no open finding
    prune_gone_capabilities(svc)  # gone users' records whose losses are over
    crash_point(svc, "reconcile.after_gone")
    # What this run opened and resolved, from the ledger: a resumed page or finish phase
    # meets its own earlier writes as "persisting", so counting changes undercounts.
    c.new_findings, c.resolved_findings = ledger.run_changes(run.run_id)
    # The data-loss guard adds its finding while settling, beside the evaluation's findings
    # (which the counts by code and the report page hold): the ledger says who is at risk.
    at_risk = len(ledger.open_by_code([DATA_LOSS_RISK]))

    folder = f"{REPORTS}{run.date}/{run.run_id}/"
    blobs: list[str] = []
    blobs += assemble_paths(scan, folder, tenant, sku_reports, group_reports)
    drift, config_blobs = await configuration(scan, folder, world)
    blobs += config_blobs
    blobs += migration_reports(scan, folder, world)
    check, check_blob = await self_check_report(scan, folder)
    blobs.append(check_blob)

    summary = NightlySummary(
        run_id=run.run_id,
        date=run.date,
        tenant_name=world.organization_name,
        started_at=run.started_at.isoformat(),
        finished_at=svc.now().isoformat(),
        users_scanned=c.users,
        findings_by_code=dict(sorted(c.findings_by_code.items())),
        new_findings=c.new_findings,
        resolved_findings=c.resolved_findings,
        top_groups_by_errors=[
            GroupErrors(g, tenant.groups[g].name if g in tenant.groups else g, n)
            for g, n in c.group_errors.most_common(10)
        ],
        seat_forecast=[
            SeatForecast(
                s.id,
                s.part_number,
                catalog().product(s.id, s.part_number),
                c.demand[s.id],
                s.prepaid.enabled,
                s.consumed,
            )
            for s in tenant.skus.values()
        ],
        drift=drift,
        data_loss_risks=at_risk,
        self_check_agreement=check.agreement,
        self_check_disagreements=len(check.disagreements) + len(check.state_mismatches),
        reprocess_outcomes={
            "queued": c.queued,
            "wouldReprocess": c.would_reprocess,
            "retryLater": c.retry_later,
            "alertInstead": c.alerts,
        },
        baseline=run.baseline,
        report_blobs=blobs,
    )
    scan.blobs.put(
        folder + "summary.json",
        orjson.dumps(summary.to_json()),
        content_type="application/json",
    )
    blobs.append(folder + "summary.json")
    blobs += health_page(scan, world, sku_reports, group_reports, summary)
    crash_point(svc, "reconcile.after_reports")
    await send_summary(scan, summary, folder + "summary.json")
    crash_point(svc, "reconcile.after_summary_sent")
    run.phase = DONE
    scan.checkpoint()
    crash_point(svc, "reconcile.after_done")
    scan.state.put(LAST, last_fields(run, svc.now()))
    # Last: a resumed finish needs the run's groups.json and page parts until DONE.
    prune(scan)
    log.info(
        "reconcile.finished",
        run_id=run.run_id,
        users=c.users,
        new_findings=c.new_findings,
        resolved=c.resolved_findings,
        reprocess_queued=c.queued,
        baseline=run.baseline,
    )
    result = ReconcileResult(run.run_id, run.date, DONE, resumed, run.baseline, summary, blobs)
    result.add(c)
    return result


async def settle_skipped(scan: Scan, unseen: list[str]) -> set[str]:
    """The users with open findings no page held whom Graph still has, settled as one more
    page; returns their ids. Users are paged by position, so a user deleted before the page a
    resumed run goes on from moves the next one onto a page already read: not gone, and
    resolving their findings as a deleted user's would mail them resolved tonight and new
    tomorrow (and leave them out of the reports)."""
    found = await scan.svc.directory.users_by_id(unseen) if unseen else {}
    if not found:
        return set()
    world = scan.load_world()
    subjects = open_subjects(scan.svc)
    await settle_page(scan, world, member_index(world), list(found.values()), subjects)
    scan.run.counters.pages += 1
    scan.checkpoint()
    return set(found)


def unread_subjects(
    subjects: Iterable[str], sku_ids: Collection[str], group_ids: Collection[str]
) -> list[str]:
    """Products and licensed groups with open findings that the scan no longer read (gone
    from subscribedSkus; deleted, or no longer licensed): their findings no longer apply,
    however the event that said so was lost."""
    return sorted(
        s
        for s in subjects
        if (s.startswith("sku:") and s.removeprefix("sku:") not in sku_ids)
        or (s.startswith("group:") and s.removeprefix("group:") not in group_ids)
    )


def prune(scan: Scan) -> None:
    if scan.opts.prune_history:  # by the app's REPORT_RETENTION_DAYS: the timer's run only
        cutoff = scan.svc.now() - timedelta(days=scan.opts.retention_days)
        scan.blobs.delete_older_than(REPORTS, cutoff)
    # This run's working files, and any a run that died after DONE left behind.
    for name in blob_names(scan.blobs.list(RUNS)):
        scan.blobs.delete(name)
    # Delayed-retry records long past due: one per user who once waited, else kept forever.
    PendingRetries(scan.svc.tables.servicestate).prune(scan.svc.now())
    # Findings and reprocess-ledger rows past their retention (the timer's run only).
    if scan.opts.prune_history:
        prune_history(scan.svc, scan.run.run_id)


async def send_summary(scan: Scan, summary: NightlySummary, blob: str) -> None:
    """One summary per date: a rerun, or a second firing, never mails again. Owed first
    (`owed_summaries`), so a mail Graph refuses is sent again later, not lost; the summaries
    still owed from earlier nights go out before it (a baseline is recorded here, its mail
    is owed like a summary)."""
    if scan.run.rerun or summary_sent_for(scan.state, summary.date):
        log.info("reconcile.summary_skipped", date=summary.date, reason="already sent or owed")
    else:
        if summary.baseline:
            alerts.record_baseline_done(scan.svc, summary.run_id)
        owe_summary(scan.state, blob)
    await send_owed_summaries(scan.svc, scan.blobs)
