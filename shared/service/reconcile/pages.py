"""The scan's users phase: all users page by page, each page settled by the user pipeline
(findings, reprocesses) and its share of the reports kept with the run; the checkpoint moves
past each page, so a killed host resumes at the next one.

ALL users are read (a user whose only assignment failed may hold no `assignedLicenses`:
filtering on licensed users would skip exactly the errored ones). The first run after install
(or a BASELINE reset) records findings and observations but queues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
import structlog

from shared.catalog.products import catalog
from shared.core.evaluate import Evaluation
from shared.core.findings import REPORTED_CODES
from shared.core.model import Tenant
from shared.ports.directory import JSON, USER_SELECT, DirectoryError
from shared.ports.licensed_world import LicensedWorld
from shared.ports.paging import FollowedLinks
from shared.render.evaluation import evaluation_json
from shared.render.paths import path_rows
from shared.service.crashpoints import crash_point
from shared.service.reconcile.outputs import page_checks
from shared.service.reconcile.reports import spool, write_csv_rows
from shared.service.reconcile.run_state import FINISH, USERS, Counters, Run, Scan, blob_names
from shared.service.reconcile.scan import (
    evaluate_page,
    member_index,
    open_subjects,
    unlicensed_state_groups,
    user_total,
)
from shared.service.users import Mode, settle

log = structlog.get_logger(__name__)


async def read_users(scan: Scan) -> None:
    """Phase 2: every page of users, from the checkpoint's next link to the last."""
    world = scan.load_world()
    index = member_index(world)
    subjects = open_subjects(scan.svc)
    run = scan.run
    total = world.user_count
    if scan.opts.progress and not world.counted:  # the groups were read unwatched
        total = await user_total(scan.svc.directory)
    resumed_at = run.next_link
    followed = FollowedLinks()  # a cycle of pages stops here, not at the time budget
    followed.follow(run.next_link)
    while True:
        try:
            users, next_link = await scan.svc.directory.users_page(
                run.next_link, select=USER_SELECT
            )
        except DirectoryError as exc:
            if resumed_at is None or run.next_link != resumed_at or exc.status != 400:
                raise
            restart_users(scan, exc)
            resumed_at = None
            followed = FollowedLinks()
            continue
        followed.follow(next_link)
        await settle_page(scan, world, index, users, subjects)
        run.next_link = next_link
        run.counters.pages += 1
        if next_link is None:
            run.phase = FINISH
        scan.checkpoint()
        crash_point(scan.svc, "reconcile.after_page_checkpoint")
        if scan.opts.progress:
            scan.opts.progress(USERS, run.counters.users, total)
        if next_link is None:
            return
        scan.check_deadline()


def restart_users(scan: Scan, refused: DirectoryError) -> None:
    """Graph refused the checkpoint's next link (a directory page token expires: 400
    `Directory_ExpiredPageToken`), so a resume an hour or a night later cannot go on from it:
    the users phase starts over from the first page, its page parts and counts dropped."""
    log.warning("reconcile.users_restarted", run_id=scan.run.run_id, code=refused.code,
                pages=scan.run.counters.pages)  # fmt: skip
    for name in blob_names(scan.blobs.list(scan.prefix + "pages/")):
        scan.blobs.delete(name)
    scan.run.next_link = None
    scan.run.counters = Counters()
    scan.in_flight = None  # read again: it counts what the dropped pages queued
    scan.checkpoint()


def page_mode(run: Run, subjects: set[str]) -> Mode:
    """How the scan (and its dry run) settles a page: the groups were read just now, seats
    promised by earlier pages count, the ledger is read only for users with findings. Its
    users count as read when the run read its groups (their memberships were read then; a run
    resumed on a later night reads them again)."""
    return Mode(
        run_id=run.run_id,
        read_at=run.groups_read_at or run.started_at,
        baseline=run.baseline,
        retry=not run.rerun,
        reread_processing=False,
        ledger_of_everyone=False,
        open_subjects=subjects,
        promised=run.counters.promised,
        failing=run.counters.failing,
        scan_page=True,
        seats_counted_at=run.groups_read_at or run.started_at,
    )


async def settle_page(
    scan: Scan,
    world: LicensedWorld,
    index: Mapping[str, Sequence[str]],
    users: list[JSON],
    subjects: set[str],
) -> None:
    c = scan.run.counters
    unlicensed = await unlicensed_state_groups(scan.svc.directory, world, users)
    tenant, evaluation = evaluate_page(world, index, users, unlicensed)
    findings = [f for r in evaluation.users for f in r.findings]
    with_findings = sorted({f.user_id for f in findings if f.user_id})
    mode = page_mode(scan.run, subjects)
    mode.in_flight = scan.in_flight  # read once a run, by the first page that needs it
    outcome = await settle(scan.svc, tenant, evaluation, mode, flush=with_findings)
    scan.in_flight = mode.in_flight
    c.count_page(len(evaluation.users), outcome)
    c.retry_later += len(outcome.retry_later)
    c.alerts += len(outcome.alerts)
    c.findings_by_code.update(f.code for f in findings)
    in_error = {
        (f.group_id, f.user_id) for f in findings if f.code in REPORTED_CODES and f.group_id
    }
    c.group_errors.update(group_id for group_id, _ in in_error)  # users, not their errors
    c.demand.update(evaluation.seat_demand())
    write_parts(scan, tenant, evaluation)
    crash_point(scan.svc, "reconcile.after_page_parts")


def write_parts(scan: Scan, tenant: Tenant, evaluation: Evaluation) -> None:
    """The page's share of the reports, kept with the run until the finish assembles them."""
    page = f"{scan.prefix}pages/{scan.run.counters.pages:05d}/"
    with spool() as out:
        write_csv_rows(path_rows(evaluation, tenant, catalog()), out)
        out.seek(0)
        scan.blobs.put(page + "paths.csv", out.read(), content_type="text/csv")
    users = evaluation_json(evaluation, tenant)["users"]
    scan.blobs.put(
        page + "users.jsonl",
        b"".join(orjson.dumps(u) + b"\n" for u in users),
        content_type="application/x-ndjson",
    )
    checks = page_checks(evaluation, tenant)
    scan.blobs.put(
        page + "checks.json", orjson.dumps(checks.to_json()), content_type="application/json"
    )
