"""The nightly reconciliation: the safety net that makes the service right when notifications
were lost.

One scan of the whole tenant, checkpointed so it survives a killed host:

1. ``groups``: subscribed SKUs, the organization, licensed groups (`assignedLicenses/any()`)
   and their user members, page by page. Kept with the run in blob storage
   (``runs/<runId>/groups.json``), so a resumed run evaluates against the same memberships.
2. ``users``: ALL users, page by page (a user whose only assignment failed may hold no
   `assignedLicenses`: filtering on licensed users would skip exactly the errored ones). Each
   page is evaluated by the core with the licensed groups' configuration and the member index,
   its findings reconciled with the ledger (new, persisting, resolved) and the reprocess policy
   applied with recompute's own pieces; the page's report parts go to blob storage and the
   checkpoint (`servicestate`: runId, phase, next link, counters) moves past it.
3. ``finish``: SKU findings from the whole demand, users gone since they were last seen,
   the reports assembled (assignment paths CSV + JSON, configuration snapshot and its drift
   with the audit-log actor, migration plan, self-check), old reports pruned, and the summary
   mailed once per date (a baseline summary the first time).

A run belongs to a UTC date. A timer firing on a date whose run finished does nothing; one
firing while a run is unfinished resumes it. Memory stays bounded by a page of users plus the
member index (user id -> licensed group ids).

The first reconciliation after install (or a BASELINE reset, owned by the alerts) is a
baseline: findings are recorded and observations stored, but nothing is queued.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

import orjson
import structlog

from shared.adapters.snapshot import parse_snapshot
from shared.catalog.products import catalog
from shared.core.evaluate import Evaluation, evaluate
from shared.core.findings import REPORTED_CODES, Finding, Names
from shared.core.nightly_summary import GroupErrors, NightlySummary, SeatForecast
from shared.core.reprocess import ReprocessNow
from shared.core.sku_findings import sku_findings
from shared.ports.blobs import BlobStore
from shared.ports.directory import JSON, USER_SELECT, DirectoryError
from shared.render.csvsafe import csv_writer
from shared.render.report import (
    CSV_HEADER,
    MIGRATION_CSV_HEADER,
    evaluation_json,
    finding_json,
    migration_json,
    migration_rows,
    path_rows,
    write_rows,
)
from shared.service.alerts import jobs as alerts
from shared.service.crashpoints import crash_point
from shared.service.dataloss import alert_data_loss
from shared.service.health_report import write_nightly_page
from shared.service.nested import nested_group_findings, read_nested_groups
from shared.service.reconcile.outputs import (
    AUDIT_ACTIVITIES,
    assemble_migration,
    config_drift,
    config_snapshot,
    drift_json,
    page_checks,
    self_check,
)
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ReprocessLedger, ServiceState
from shared.service.users import (
    RecomputeOutcome,
    act_on,
    decide,
    record_findings,
    resolve_gone,
)

log = structlog.get_logger(__name__)

RUN = "reconcile-run"
LAST = "reconcile-last"
SUMMARY_SENT = "reconcile-summary-sent"
REPORTS = "nightly/"
"""Each run's reports: nightly/<date>/<runId>/... (pruned after REPORT_RETENTION_DAYS)."""
CONFIG_LATEST = "nightly-config/latest.json"
"""The latest configuration snapshot: tomorrow's diff starts from it."""
RUNS = "nightly-runs/"
"""A run's working set (the groups it read, each page's report parts); deleted at the end."""

GROUPS, USERS, FINISH, DONE = "groups", "users", "finish", "done"


class Stop(Exception):
    """Raised by a deadline check: the checkpoint is saved, the next firing resumes."""


@dataclass
class Counters:
    """Everything the summary needs, kept in the checkpoint (small: per SKU and group)."""

    pages: int = 0
    users: int = 0
    findings_by_code: Counter[str] = field(default_factory=Counter)
    new: int = 0
    resolved: int = 0
    queued: int = 0
    would_reprocess: int = 0
    retry_later: int = 0
    alerts: int = 0
    demand: Counter[str] = field(default_factory=Counter)
    group_errors: Counter[str] = field(default_factory=Counter)
    promised: Counter[str] = field(default_factory=Counter)
    """Seats promised per SKU to CountViolation reprocesses queued by this run."""

    def to_json(self) -> str:
        return orjson.dumps(
            {k: dict(v) if isinstance(v, Counter) else v for k, v in self.__dict__.items()}
        ).decode()

    @classmethod
    def from_json(cls, text: str | None) -> Counters:
        raw = orjson.loads(text) if text else {}
        out = cls()
        for key, value in raw.items():
            current = getattr(out, key, None)
            setattr(out, key, Counter(value) if isinstance(current, Counter) else value)
        return out


@dataclass
class Run:
    run_id: str
    date: str
    started_at: datetime
    phase: str
    next_link: str | None
    baseline: bool
    counters: Counters
    rerun: bool = False
    """A run for a date that already had one: records, but sends no delayed recomputes and no
    second summary."""

    def fields(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "date": self.date,
            "startedAt": self.started_at,
            "phase": self.phase,
            "nextLink": self.next_link or "",
            "baseline": self.baseline,
            "rerun": self.rerun,
            "counters": self.counters.to_json(),
        }


@dataclass
class ReconcileResult:
    run_id: str
    date: str
    status: str
    """'done', 'skipped' (the date's run had finished), 'stopped' (deadline, resumable) or
    'dry-run'."""
    resumed: bool = False
    baseline: bool = False
    summary: NightlySummary | None = None
    report_blobs: list[str] = field(default_factory=list)
    queued: int = 0
    would_reprocess: int = 0
    new_findings: int = 0
    resolved_findings: int = 0
    users: int = 0
    planned: list[str] = field(default_factory=list)
    """With dry_run: what the run would do, one line each, by name in the mail's wording."""
    new: list[Finding] = field(default_factory=list)
    """With dry_run: the findings the run would open (for the summary)."""
    group_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Options:
    dry_run: bool = False
    force: bool = False
    """Run even when the date's run has finished (the CLI); never a second summary."""
    deadline: datetime | None = None
    """Stop (checkpointed) after the first page finishing past this time."""
    retention_days: int = 30
    progress: Callable[[str, int, int | None], None] | None = None
    """Called with (phase, done, total or None) after each page."""


# --------------------------------------------------------------------------- entry point

RUN_BUDGET = timedelta(minutes=25)
"""Flex Consumption stops a function after 30 minutes by default: checkpoint and stop before."""


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
    run = _load_run(state)
    resumed = run is not None and run.phase != DONE and not opts.dry_run
    if not resumed:
        last = state.get(LAST)
        done_today = last is not None and last.fields.get("date") == today
        if last is not None and done_today and not opts.force:
            log.info("reconcile.skipped", date=today, reason="already reconciled today")
            return ReconcileResult(str(last.fields.get("runId")), today, "skipped")
        run = Run(
            run_id=f"{today}-{uuid.uuid4().hex[:8]}",
            date=today,
            started_at=now,
            phase=GROUPS,
            next_link=None,
            baseline=_baseline_pending(svc, state),
            counters=Counters(),
            rerun=done_today,
        )
    assert run is not None
    if opts.dry_run:
        return await _dry_run(svc, run, opts)
    log.info(
        "reconcile.started" if not resumed else "reconcile.resumed",
        run_id=run.run_id,
        phase=run.phase,
        baseline=run.baseline,
        pages=run.counters.pages,
    )
    scan = _Scan(svc, blobs, state, run, opts)
    try:
        if run.phase == GROUPS:
            await scan.read_groups()
        if run.phase == USERS:
            await scan.read_users()
        if run.phase == FINISH:
            return await scan.finish(resumed)
    except Stop:
        log.info("reconcile.stopped", run_id=run.run_id, pages=run.counters.pages)
        return ReconcileResult(run.run_id, run.date, "stopped", resumed, run.baseline)
    raise AssertionError(f"unknown phase {run.phase}")  # pragma: no cover


def _load_run(state: ServiceState) -> Run | None:
    entity = state.get(RUN)
    if entity is None:
        return None
    f = entity.fields
    started = f.get("startedAt")
    assert isinstance(started, datetime)
    return Run(
        run_id=str(f["runId"]),
        date=str(f["date"]),
        started_at=started,
        phase=str(f["phase"]),
        next_link=str(f.get("nextLink") or "") or None,
        baseline=bool(f.get("baseline")),
        counters=Counters.from_json(str(f.get("counters") or "")),
        rerun=bool(f.get("rerun")),
    )


def _baseline_pending(svc: Services, state: ServiceState) -> bool:
    """The alerts own the BASELINE setting and state."""
    return alerts.baseline_pending(svc)


# --------------------------------------------------------------------------- the scan


class _Scan:
    def __init__(
        self, svc: Services, blobs: BlobStore, state: ServiceState, run: Run, opts: Options
    ) -> None:
        self.svc, self.blobs, self.state, self.run, self.opts = svc, blobs, state, run, opts
        self.prefix = f"{RUNS}{run.run_id}/"
        self.world: JSON | None = None

    def checkpoint(self) -> None:
        self.state.put(RUN, self.run.fields())

    def check_deadline(self) -> None:
        if self.opts.deadline is not None and self.svc.now() >= self.opts.deadline:
            raise Stop

    # ------------------------------------------------------------------ phase 1
    async def read_groups(self) -> None:
        self.checkpoint()
        world = await read_world(self.svc.directory, self.opts.progress)
        self.blobs.put(
            self.prefix + "groups.json", orjson.dumps(world), content_type="application/json"
        )
        self.world = world
        self.run.phase = USERS
        self.checkpoint()
        crash_point(self.svc, "reconcile.after_groups")

    def load_world(self) -> JSON:
        if self.world is None:
            raw = self.blobs.get(self.prefix + "groups.json")
            if raw is None:
                raise RuntimeError(f"run {self.run.run_id}: groups.json is missing")
            self.world = orjson.loads(raw)
        return self.world

    # ------------------------------------------------------------------ phase 2
    async def read_users(self) -> None:
        world = self.load_world()
        index = member_index(world)
        open_subjects = _open_subjects(self.svc)
        while True:
            users, next_link = await self.svc.directory.users_page(
                self.run.next_link, select=USER_SELECT
            )
            await self.page(world, index, users, open_subjects)
            self.run.next_link = next_link
            self.run.counters.pages += 1
            if next_link is None:
                self.run.phase = FINISH
            self.checkpoint()
            crash_point(self.svc, "reconcile.after_page_checkpoint")
            if self.opts.progress:
                self.opts.progress(USERS, self.run.counters.users, None)
            if next_link is None:
                return
            self.check_deadline()

    async def page(
        self,
        world: JSON,
        index: Mapping[str, Sequence[str]],
        users: list[JSON],
        open_subjects: set[str],
    ) -> None:
        c = self.run.counters
        tenant, evaluation = evaluate_page(world, index, users)
        findings = [f for r in evaluation.users for f in r.findings]
        outcome = RecomputeOutcome()
        queued: set[str] = set()
        with_findings = sorted({f.user_id for f in findings if f.user_id})
        plan = await decide(
            self.svc,
            tenant,
            findings,
            with_findings,
            reread_processing=False,
            promised_elsewhere=c.promised,
        )
        if self.run.baseline:
            # Record what is there, queue nothing: the observations keep the policy's memory.
            ledger = ReprocessLedger(self.svc.tables.reprocessledger)
            for user_id, attempts in plan.observations().items():
                ledger.observe(user_id, attempts)
            outcome.would_reprocess = [
                u for u, d in plan.users.items() if isinstance(d, ReprocessNow)
            ]
        else:
            queued = act_on(
                self.svc,
                plan,
                self.run.run_id,
                outcome,
                retry=not self.run.rerun,
                flush=with_findings,
            )
            for user_id in outcome.queued:
                decision = plan.users[user_id]
                assert isinstance(decision, ReprocessNow)
                c.promised.update(
                    {x.sku_id for x in decision.causes if x.code == "CountViolation" and x.sku_id}
                )
        record_findings(
            self.svc,
            evaluation.users,
            self.run.run_id,
            queued,
            outcome,
            skip=lambda r: not r.findings and r.user.id not in open_subjects,
        )
        crash_point(self.svc, "reconcile.after_page_findings")
        if not self.run.baseline:
            # The data-loss guard mails at once, nightly as on every recompute.
            await alert_data_loss(self.svc, outcome.new_findings)
        c.users += len(evaluation.users)
        c.new += len(outcome.new_findings)
        c.resolved += len(outcome.resolved)
        c.queued += len(outcome.queued)
        c.would_reprocess += len(outcome.would_reprocess)
        c.retry_later += len(outcome.retry_later)
        c.alerts += len(outcome.alerts)
        c.findings_by_code.update(f.code for f in findings)
        c.group_errors.update(
            f.group_id for f in findings if f.code in REPORTED_CODES and f.group_id
        )
        for report in evaluation.users:
            c.demand.update(lic.sku_id for lic in report.licenses)
        self.write_parts(tenant, evaluation)
        crash_point(self.svc, "reconcile.after_page_parts")

    def write_parts(self, tenant: Any, evaluation: Evaluation) -> None:
        """The page's share of the reports, kept with the run until the finish assembles them."""
        page = f"{self.prefix}pages/{self.run.counters.pages:05d}/"
        with _spool() as out:
            rows = path_rows(evaluation, tenant, catalog())
            _write_csv_rows(rows, out)
            out.seek(0)
            self.blobs.put(page + "paths.csv", out.read(), content_type="text/csv")
        users = evaluation_json(evaluation, tenant)["users"]
        self.blobs.put(
            page + "users.jsonl",
            b"".join(orjson.dumps(u) + b"\n" for u in users),
            content_type="application/x-ndjson",
        )
        checks = page_checks(evaluation, tenant)
        self.blobs.put(
            page + "checks.json", orjson.dumps(checks.to_json()), content_type="application/json"
        )

    def page_names(self, kind: str) -> list[str]:
        return sorted(
            n for n in _names(self.blobs.list(self.prefix + "pages/")) if n.endswith("/" + kind)
        )

    # ------------------------------------------------------------------ phase 3
    async def finish(self, resumed: bool) -> ReconcileResult:
        svc, run, c = self.svc, self.run, self.run.counters
        world = self.load_world()
        now = svc.now()
        tenant = parse_snapshot(
            {"subscribedSkus": world["skus"], "groups": world["groups"], "users": []}
        ).tenant
        names = Names(tenant)
        ledger = FindingsLedger(svc.tables.findings)
        sku_reports = []
        for sku in tenant.skus.values():
            found = sku_findings(sku, c.demand[sku.id], names)
            change = ledger.reconcile(f"sku:{sku.id}", found, now=now, run_id=run.run_id)
            c.new += len(change.new)
            c.resolved += len(change.resolved)
            c.findings_by_code.update(f.code for f in found)
            sku_reports.append((sku, found))
        for group_id, found in nested_group_findings(world).items():
            ledger.reconcile(f"group:{group_id}", found, now=now, run_id=run.run_id)
            c.findings_by_code.update(f.code for f in found)
        crash_point(svc, "reconcile.after_sku_findings")
        gone = RecomputeOutcome()
        resolve_gone(svc, _unseen_users(svc, run.started_at), run.run_id, gone)
        crash_point(svc, "reconcile.after_gone")
        # What this run opened and resolved, from the ledger: a resumed page or finish phase
        # meets its own earlier writes as "persisting", so counting changes undercounts.
        c.new, c.resolved = ledger.run_changes(run.run_id)

        folder = f"{REPORTS}{run.date}/{run.run_id}/"
        blobs: list[str] = []
        blobs += self.assemble_paths(folder, tenant, sku_reports)
        drift, config_blobs = await self.configuration(folder, world)
        blobs += config_blobs
        blobs += self.assemble_migration(folder, world)
        check, check_blob = await self.self_check(folder)
        blobs.append(check_blob)

        summary = NightlySummary(
            run_id=run.run_id,
            date=run.date,
            tenant_name=str((world.get("organization") or {}).get("displayName") or ""),
            started_at=run.started_at.isoformat(),
            finished_at=svc.now().isoformat(),
            users_scanned=c.users,
            findings_by_code=dict(sorted(c.findings_by_code.items())),
            new_findings=c.new,
            resolved_findings=c.resolved,
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
        self.blobs.put(
            folder + "summary.json",
            orjson.dumps(summary.to_json()),
            content_type="application/json",
        )
        blobs.append(folder + "summary.json")
        blobs += self.health_page(world, sku_reports, summary)
        crash_point(svc, "reconcile.after_reports")
        await self.send_summary(summary)
        crash_point(svc, "reconcile.after_summary_sent")
        run.phase = DONE
        self.checkpoint()
        crash_point(svc, "reconcile.after_done")
        self.state.put(LAST, {"date": run.date, "runId": run.run_id, "finishedAt": svc.now()})
        # Last: a resumed finish needs the run's groups.json and page parts until DONE.
        self.prune()
        log.info(
            "reconcile.finished",
            run_id=run.run_id,
            users=c.users,
            new_findings=c.new,
            resolved=c.resolved,
            reprocess_queued=c.queued,
            baseline=run.baseline,
        )
        return ReconcileResult(
            run.run_id,
            run.date,
            DONE,
            resumed,
            run.baseline,
            summary,
            blobs,
            c.queued,
            c.would_reprocess,
            c.new,
            c.resolved,
            c.users,
        )

    def assemble_paths(
        self, folder: str, tenant: Any, sku_reports: list[tuple[Any, list[Finding]]]
    ) -> list[str]:
        with _spool() as out:
            _write_csv_rows([CSV_HEADER], out)  # quoted like the rows
            for name in self.page_names("paths.csv"):
                out.write(self.blobs.get(name) or b"")
            out.seek(0)
            _upload(self.blobs, folder + "paths.csv", out, "text/csv")
        with _spool() as out:
            out.write(b'{"users":[')
            first = True
            for name in self.page_names("users.jsonl"):
                for line in (self.blobs.get(name) or b"").splitlines():
                    if line:
                        out.write(line if first else b"," + line)
                        first = False
            groups = [
                {"id": g.id, "displayName": g.name, "findings": []} for g in tenant.groups.values()
            ]
            skus = [
                {
                    "skuId": s.id,
                    "skuPartNumber": s.part_number,
                    "demand": self.run.counters.demand[s.id],
                    "prepaidEnabled": s.prepaid.enabled,
                    "consumed": s.consumed,
                    "shortfall": max(0, self.run.counters.demand[s.id] - s.prepaid.enabled),
                    "findings": [finding_json(f) for f in found],
                }
                for s, found in sku_reports
            ]
            out.write(b'],"groups":' + orjson.dumps(groups) + b',"skus":' + orjson.dumps(skus))
            out.write(b"}\n")
            out.seek(0)
            _upload(self.blobs, folder + "evaluation.json", out, "application/json")
        return [folder + "paths.csv", folder + "evaluation.json"]

    async def configuration(self, folder: str, world: JSON) -> tuple[list[Any], list[str]]:
        now = self.svc.now()
        config = config_snapshot(world["skus"], world["groups"], now.isoformat())
        raw = self.blobs.get(CONFIG_LATEST)
        previous = orjson.loads(raw) if raw else None
        self.blobs.put(
            folder + "config.json", orjson.dumps(config), content_type="application/json"
        )
        out = [folder + "config.json"]
        drift: list[Any] = []
        if previous is not None and previous.get("takenAt") != config["takenAt"]:
            since = str(previous.get("takenAt") or "")
            try:
                audits = await self.svc.directory.directory_audits(
                    _graph_time(since), AUDIT_ACTIVITIES
                )
            except DirectoryError as exc:  # AuditLog.Read.All missing, or throttled
                log.warning("reconcile.audits_unavailable", error=str(exc))
                audits = []
            members = {g["id"]: g.get("memberIds") or [] for g in world["groups"]}
            drift = config_drift(previous, config, members, audits)
            document = drift_json(drift, since, config["takenAt"])
            self.blobs.put(
                folder + "config-diff.json", orjson.dumps(document), content_type="application/json"
            )
            out.append(folder + "config-diff.json")
        self.blobs.put(CONFIG_LATEST, orjson.dumps(config), content_type="application/json")
        return drift, out

    def assemble_migration(self, folder: str, world: JSON) -> list[str]:
        parts = (
            orjson.loads(self.blobs.get(n) or b"{}")["migration"]
            for n in self.page_names("checks.json")
        )
        config = {"subscribedSkus": world["skus"], "groups": world["groups"]}
        plan, tenant = assemble_migration(parts, config)
        self.blobs.put(
            folder + "migration.json",
            orjson.dumps(migration_json(plan, tenant)),
            content_type="application/json",
        )
        with _spool() as out:
            _write_rows_bytes(MIGRATION_CSV_HEADER, migration_rows(plan, tenant, catalog()), out)
            out.seek(0)
            _upload(self.blobs, folder + "migration.csv", out, "text/csv")
        return [folder + "migration.json", folder + "migration.csv"]

    async def self_check(self, folder: str) -> tuple[Any, str]:
        core: dict[str, set[str]] = {}
        mismatches: list[JSON] = []
        for name in self.page_names("checks.json"):
            part = orjson.loads(self.blobs.get(name) or b"{}")
            for group_id, users in part["errorsByGroup"].items():
                core.setdefault(group_id, set()).update(users)
            mismatches += part["stateMismatches"]
        directory = self.svc.directory
        entra_groups = set(await directory.groups_with_license_errors())
        entra_members = {
            g: set(await directory.members_with_license_errors(g))
            for g in sorted(entra_groups | core.keys())
        }
        check = self_check(self.run.counters.users, core, entra_groups, entra_members, mismatches)
        name = folder + "self-check.json"
        self.blobs.put(name, orjson.dumps(check.to_json()), content_type="application/json")
        return check, name

    def health_page(
        self, world: JSON, sku_reports: list[tuple[Any, list[Finding]]], summary: NightlySummary
    ) -> list[str]:
        """The report page (`<date>/report.html`, `latest/report.html`); a view of what is
        stored, so a failure is logged and the night goes on."""
        try:
            return write_nightly_page(
                self.blobs,
                world,
                (self.blobs.get(n) or b"" for n in self.page_names("users.jsonl")),
                (
                    orjson.loads(self.blobs.get(n) or b"{}")["migration"]
                    for n in self.page_names("checks.json")
                ),
                [finding_json(f) for _, found in sku_reports for f in found],
                self.run.counters.demand,
                summary.to_json(),
                now=self.svc.now(),
                prices=self.svc.settings.sku_prices,
                retention_days=self.opts.retention_days,
            )
        except Exception:
            log.exception("reconcile.report_page_failed", run_id=self.run.run_id)
            return []

    def prune(self) -> None:
        cutoff = self.svc.now() - timedelta(days=self.opts.retention_days)
        self.blobs.delete_older_than(REPORTS, cutoff)
        # This run's working files, and any a run that died after DONE left behind.
        for name in _names(self.blobs.list(RUNS)):
            self.blobs.delete(name)

    async def send_summary(self, summary: NightlySummary) -> None:
        """One summary per date: a rerun, or a second firing, never mails again."""
        sent = self.state.get(SUMMARY_SENT)
        if self.run.rerun or (sent is not None and sent.fields.get("date") == summary.date):
            log.info("reconcile.summary_skipped", date=summary.date, reason="already sent")
            return
        if summary.baseline:
            await alerts.send_baseline_summary(self.svc, summary)
        else:
            await alerts.send_nightly_summary(self.svc, summary)
        self.state.put(SUMMARY_SENT, {"date": summary.date, "runId": summary.run_id})


# --------------------------------------------------------------------------- pieces


async def read_world(
    directory: Any, progress: Callable[[str, int, int | None], None] | None = None
) -> JSON:
    """SKUs, the organization, licensed groups with their user member ids (paged) and the
    ids of their group members (`nestedGroupIds`: nested groups, which license nobody), and
    those nested groups with their members (`nestedGroups`)."""
    skus = await directory.subscribed_skus()
    organization = await directory.organization()
    groups = await directory.licensed_groups()
    for n, group in enumerate(groups, 1):
        ids: list[str] = []
        nested: list[str] = []
        link: str | None = None
        while True:
            page, link = await directory.group_members_page(group["id"], link, nested=nested)
            ids.extend(page)
            if link is None:
                break
        group["memberIds"] = ids
        group["nestedGroupIds"] = nested
        if progress:
            progress(GROUPS, n, len(groups))
    nested_groups = await read_nested_groups(directory, groups)
    return {
        "skus": skus,
        "organization": organization,
        "groups": groups,
        "nestedGroups": nested_groups,
    }


def member_index(world: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """User id -> the licensed groups it is a direct member of (group ids shared, not copied)."""
    index: dict[str, list[str]] = {}
    for group in world["groups"]:
        group_id = group["id"]
        for user_id in group.get("memberIds") or ():
            index.setdefault(user_id, []).append(group_id)
    return {u: tuple(g) for u, g in index.items()}


def page_document(
    world: Mapping[str, Any], index: Mapping[str, Sequence[str]], users: list[JSON]
) -> JSON:
    """A snapshot document for one page: the licensed groups with only this page's members."""
    members: dict[str, list[JSON]] = {g["id"]: [] for g in world["groups"]}
    for user in users:
        for group_id in index.get(user["id"], ()):
            members[group_id].append({"@odata.type": "#microsoft.graph.user", "id": user["id"]})
    groups = [
        {k: v for k, v in g.items() if k not in ("memberIds", "nestedGroupIds")}
        | {"members": members[g["id"]]}
        for g in world["groups"]
    ]
    document: JSON = {"subscribedSkus": world["skus"], "groups": groups, "users": users}
    if world.get("organization"):
        document["organization"] = [world["organization"]]
    return document


def evaluate_page(
    world: Mapping[str, Any], index: Mapping[str, Sequence[str]], users: list[JSON]
) -> tuple[Any, Evaluation]:
    tenant = parse_snapshot(page_document(world, index, users)).tenant
    return tenant, evaluate(tenant, *catalog().names_for(tenant))


def _open_subjects(svc: Services) -> set[str]:
    """Subjects with an open finding: users with nothing found now need no ledger call unless
    they are here (one table scan instead of a query per user)."""
    return {
        str(e.fields.get("key") or "").split("|", 1)[0]
        for e in svc.tables.findings.query_all()
        if not e.fields.get("resolvedAt")
    }


def _unseen_users(svc: Services, started: datetime) -> list[str]:
    """Users with open findings not seen since the run started: gone from the tenant."""
    out = set()
    for entity in svc.tables.findings.query_all():
        f = entity.fields
        subject = str(f.get("key") or "").split("|", 1)[0]
        last = f.get("lastSeen")
        if f.get("resolvedAt") or ":" in subject or not subject:
            continue
        if isinstance(last, datetime) and last < started:
            out.add(subject)
    return sorted(out)


def _names(listing: Any) -> Iterator[str]:
    for item in listing:
        yield item if isinstance(item, str) else str(getattr(item, "name", item))


def _graph_time(iso: str) -> str:
    """Graph's filter wants `2026-01-02T03:04:05Z`."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _spool() -> Iterator[IO[bytes]]:
    """A temporary file for a report (in memory while small), uploaded as a stream."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as handle:
        yield handle


def _write_csv_rows(rows: Any, out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    csv_writer(text).writerows(rows)
    text.detach()


def _write_rows_bytes(header: Sequence[str], rows: Any, out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    write_rows(header, rows, text)
    text.detach()


# --------------------------------------------------------------------------- dry run


async def _dry_run(svc: Services, run: Run, opts: Options) -> ReconcileResult:
    """Read everything, decide everything, write nothing: no ledger writes, no messages, no
    blobs, no mail. Returns the lines the CLI prints."""
    world = await read_world(svc.directory, opts.progress)
    index = member_index(world)
    ledger = FindingsLedger(svc.tables.findings)
    result = ReconcileResult(run.run_id, run.date, "dry-run", baseline=run.baseline)
    result.group_names = {
        str(g["id"]): str(g.get("displayName") or g["id"]) for g in world["groups"]
    }
    promised: Counter[str] = Counter()
    subjects = _open_subjects(svc)  # one table scan, not a query per user
    link: str | None = None
    while True:
        users, link = await svc.directory.users_page(link, select=USER_SELECT)
        tenant, evaluation = evaluate_page(world, index, users)
        findings = [f for r in evaluation.users for f in r.findings]
        names = Names(tenant, *catalog().names_for(tenant))
        for report in evaluation.users:
            open_keys = (
                set(ledger.open_findings(report.user.id)) if report.user.id in subjects else set()
            )
            now_keys = {f.key for f in report.findings}
            for finding in report.findings:
                if finding.key not in open_keys:
                    result.new_findings += 1
                    result.new.append(finding)
                    result.planned.append(
                        f"new finding {finding.severity.upper()} {finding.code}: {finding.message}"
                    )
            for key in sorted(open_keys - now_keys):
                result.resolved_findings += 1
                result.planned.append(f"resolve finding {describe_key(key, tenant, names)}")
        with_findings = sorted({f.user_id for f in findings if f.user_id})
        plan = await decide(
            svc,
            tenant,
            findings,
            with_findings,
            reread_processing=False,
            promised_elsewhere=promised,
        )
        for user_id, decision in plan.users.items():
            if not isinstance(decision, ReprocessNow):
                continue
            group_ids = frozenset(x.group_id for x in decision.causes if x.group_id)
            blocked = svc.settings.write_blocked_reason(group_ids) or (
                "baseline: nothing is queued" if run.baseline else None
            )
            if blocked:
                result.would_reprocess += 1
                result.planned.append(
                    f"would reprocess {_who(tenant, user_id)} because {decision.reason} "
                    f"(not queued: {blocked})"
                )
            else:
                result.queued += 1
                promised.update(
                    {x.sku_id for x in decision.causes if x.code == "CountViolation" and x.sku_id}
                )
                result.planned.append(
                    f"reprocess {_who(tenant, user_id)} because {decision.reason}"
                )
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


def _who(tenant: Any, user_id: str) -> str:
    user = tenant.users.get(user_id)
    return f"{user.display_name} <{user.user_principal_name}>" if user else f"user {user_id}"


def describe_key(key: str, tenant: Any, names: Names) -> str:
    """A ledger key (subject|sku|code|group) by name: code, user, product, group."""
    subject, sku_id, code, group_id = ([*key.split("|"), "-", "-", "-"])[:4]
    parts = [code, _who(tenant, subject) if ":" not in subject else subject]
    if sku_id != "-":
        parts.append(names.product(sku_id))
    if group_id != "-":
        parts.append(names.group(group_id))
    return ", ".join(parts)


def _upload(blobs: BlobStore, name: str, handle: IO[bytes], content_type: str) -> None:
    """Upload a spooled report from its start, streamed (never read whole into memory)."""
    handle.seek(0)
    blobs.put_file(name, handle, content_type=content_type)
