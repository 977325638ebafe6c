"""The nightly run's state: its checkpoint (run id, phase, next link, counters), its options
and result, and the working set a run keeps in blob storage until it is done.

The checkpoint lives in `servicestate` (RUN while a run goes, LAST once one finished), so a
killed host resumes where it stopped; `Scan` bundles what every phase of one run works with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from shared.adapters.world_document import world_document, world_from_document
from shared.core.findings import Finding
from shared.core.nightly_summary import NightlySummary
from shared.ports.blobs import BlobStore
from shared.ports.licensed_world import LicensedWorld
from shared.ports.tables import MAX_STRING_CHARS
from shared.service.services import Services
from shared.service.stores import ServiceState
from shared.service.users import RecomputeOutcome

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


@dataclass(kw_only=True)
class Settled:
    """The users a run settled and what settling them did: the checkpoint keeps these counts,
    the run's result reports them."""

    users: int = 0
    new_findings: int = 0
    resolved_findings: int = 0
    queued: int = 0
    would_reprocess: int = 0

    def count_page(self, users: int, outcome: RecomputeOutcome) -> None:
        """Add one settled page of `users` users."""
        self.users += users
        self.new_findings += len(outcome.new_findings)
        self.resolved_findings += len(outcome.resolved)
        self.queued += len(outcome.queued)
        self.would_reprocess += len(outcome.would_reprocess)

    def add(self, other: Settled) -> None:
        """Add `other`'s counts: a finished run's result takes its checkpoint's."""
        for count in fields(Settled):
            setattr(self, count.name, getattr(self, count.name) + getattr(other, count.name))


@dataclass
class Counters(Settled):
    """Everything the summary needs, kept in the checkpoint (small: per SKU and group)."""

    pages: int = 0
    findings_by_code: Counter[str] = field(default_factory=Counter)
    retry_later: int = 0
    alerts: int = 0
    demand: Counter[str] = field(default_factory=Counter)
    group_errors: Counter[str] = field(default_factory=Counter)
    promised: Counter[str] = field(default_factory=Counter)
    """Seats promised per SKU to CountViolation reprocesses queued by this run."""
    failing: Counter[str] = field(default_factory=Counter)
    """Users counted toward a mass failure per group, SKU and code (`Mode.failing`)."""

    def to_json(self) -> str:
        return orjson.dumps(
            {k: dict(v) if isinstance(v, Counter) else v for k, v in self.__dict__.items()}
        ).decode()

    @classmethod
    def from_json(cls, text: str | None) -> Counters:
        raw = orjson.loads(text) if text else {}
        out = cls()
        # Keys no longer counted (an older checkpoint's "new", "resolved") are left behind.
        for key, value in raw.items():
            if hasattr(out, key):
                current = getattr(out, key)
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
    groups_read_at: datetime | None = None
    """When the licensed groups it works with were read (None: when it started)."""

    def fields(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "date": self.date,
            "startedAt": self.started_at,
            "groupsReadAt": self.groups_read_at or self.started_at,
            "phase": self.phase,
            "nextLink": self.next_link or "",
            "baseline": self.baseline,
            "rerun": self.rerun,
            **counter_fields(self.counters.to_json()),
        }


COUNTER_PARTS = 14
"""Fields the counters' JSON may span (`counters`, `counters1`, ...): a table string holds
32K characters, which `group_errors` outgrows at about 760 groups with errors; 14 such
strings (about 10,000 groups) stay inside an entity's 1 MiB."""


def counter_fields(text: str) -> dict[str, str]:
    """The counters' JSON cut into table strings, in the checkpoint's fields."""
    parts = [text[i : i + MAX_STRING_CHARS] for i in range(0, len(text), MAX_STRING_CHARS)]
    if len(parts) > COUNTER_PARTS:
        raise ValueError(f"run counters: {len(text)} characters, over {COUNTER_PARTS} fields")
    return {f"counters{n or ''}": part for n, part in enumerate(parts)}


def counters_text(fields: dict[str, Any]) -> str:
    """The counters' JSON joined from the checkpoint's fields (`counter_fields`)."""
    parts = (str(fields.get(f"counters{n or ''}") or "") for n in range(COUNTER_PARTS))
    return "".join(parts)


@dataclass
class ReconcileResult(Settled):
    run_id: str
    date: str
    status: str
    """'done', 'skipped' (the date's run had finished), 'stopped' (deadline, resumable) or
    'dry-run'."""
    resumed: bool = False
    baseline: bool = False
    summary: NightlySummary | None = None
    report_blobs: list[str] = field(default_factory=list)
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
    """The reports' (REPORT_RETENTION_DAYS), with `prune_history`."""
    prune_history: bool = True
    """Delete at the finish what the app's retention settings have expired: reports past
    `retention_days`, the findings and reprocess ledger past `FINDINGS_RETENTION_DAYS` (the
    timer's run); not from the CLI, whose settings are the shell's, not the app's."""
    progress: Callable[[str, int, int | None], None] | None = None
    """Called with (phase, done, total or None) after each page."""


def last_fields(run: Run, finished_at: datetime) -> dict[str, Any]:
    """The LAST record of a finished run: its date and id, when it started and finished."""
    return {
        "date": run.date,
        "runId": run.run_id,
        "startedAt": run.started_at,
        "finishedAt": finished_at,
    }


def load_run(state: ServiceState) -> Run | None:
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
        counters=Counters.from_json(counters_text(f)),
        rerun=bool(f.get("rerun")),
        # A checkpoint written before it was kept: read when the run started.
        groups_read_at=read_at if isinstance(read_at := f.get("groupsReadAt"), datetime) else None,
    )


class Scan:
    """One run at work: the services, its blobs, the checkpoint and the groups it read."""

    def __init__(
        self, svc: Services, blobs: BlobStore, state: ServiceState, run: Run, opts: Options
    ) -> None:
        self.svc, self.blobs, self.state, self.run, self.opts = svc, blobs, state, run, opts
        self.prefix = f"{RUNS}{run.run_id}/"
        self.world: LicensedWorld | None = None
        self.in_flight: dict[str, set[str]] | None = None
        """`Mode.in_flight` of the run's pages (not kept: a resume reads the ledger again)."""

    def checkpoint(self) -> None:
        self.state.put(RUN, self.run.fields())

    def check_deadline(self) -> None:
        if self.opts.deadline is not None and self.svc.now() >= self.opts.deadline:
            raise Stop

    def keep_world(self, world: LicensedWorld) -> None:
        """Keep the groups the run read (phase 1) with its working set, for a resume."""
        document = orjson.dumps(world_document(world))
        self.blobs.put(self.prefix + "groups.json", document, content_type="application/json")
        self.world = world

    def load_world(self) -> LicensedWorld:
        """The groups the run read (phase 1), from its working set after a resume."""
        if self.world is None:
            raw = self.blobs.get(self.prefix + "groups.json")
            if raw is None:
                raise RuntimeError(f"run {self.run.run_id}: groups.json is missing")
            self.world = world_from_document(orjson.loads(raw))
        return self.world

    def page_names(self, kind: str) -> list[str]:
        """The run's stored page parts of one kind (paths.csv, users.jsonl, checks.json)."""
        return sorted(
            n for n in blob_names(self.blobs.list(self.prefix + "pages/")) if n.endswith("/" + kind)
        )


def blob_names(listing: Any) -> Iterator[str]:
    for item in listing:
        yield item if isinstance(item, str) else str(getattr(item, "name", item))
