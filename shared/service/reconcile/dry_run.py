"""The nightly run's dry run (`license-guard reconcile --dry-run`): read everything, decide
everything, write nothing — no ledger writes, no messages, no blobs, no mail.

It is the scan's own path: each page is settled by the user pipeline exactly as the run
would, with `RecordedWrites` in place of the ledgers and queues; what they were asked to do
comes back as the lines the CLI prints, by name in the mail's wording.
"""

from __future__ import annotations

from shared.catalog.products import catalog
from shared.core.findings import Names
from shared.ports.directory import USER_SELECT
from shared.service.reconcile.pages import page_mode
from shared.service.reconcile.run_state import REPORTS, USERS, Options, ReconcileResult, Run
from shared.service.reconcile.scan import evaluate_page, member_index, open_subjects, read_world
from shared.service.services import Services
from shared.service.user_writes import RecordedWrites
from shared.service.users import settle


async def dry_run(svc: Services, run: Run, opts: Options) -> ReconcileResult:
    """What `run` would do, page by page; returns the lines the CLI prints."""
    world = await read_world(svc.directory, opts.progress)
    index = member_index(world)
    result = ReconcileResult(run.run_id, run.date, "dry-run", baseline=run.baseline)
    result.group_names = {
        str(g["id"]): str(g.get("displayName") or g["id"]) for g in world["groups"]
    }
    mode = page_mode(run, open_subjects(svc))  # one table scan, not a query per user
    writes = RecordedWrites(svc)
    link: str | None = None
    while True:
        users, link = await svc.directory.users_page(link, select=USER_SELECT)
        tenant, evaluation = evaluate_page(world, index, users)
        writes.page(tenant, Names(tenant, *catalog().names_for(tenant)))
        outcome = await settle(svc, tenant, evaluation, mode, writes)
        result.planned += writes.take_lines()
        result.new += outcome.new_findings
        result.new_findings += len(outcome.new_findings)
        result.resolved_findings += len(outcome.resolved)
        result.queued += len(outcome.queued)
        result.would_reprocess += len(outcome.would_reprocess)
        result.users += len(evaluation.users)
        if opts.progress:
            opts.progress(USERS, result.users, None)
        if link is None:
            break
    summary_kind = "baseline summary" if run.baseline else "nightly summary"
    result.planned.append(
        f"write reports under {REPORTS}{run.date}/{run.run_id}/ and send the {summary_kind}"
    )
    return result
