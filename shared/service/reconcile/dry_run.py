"""The nightly run's dry run (`license-guard reconcile --dry-run`): read everything, decide
everything, write nothing — no ledger writes, no messages, no blobs, no mail.

It is the scan's own path: each page is settled by the user pipeline exactly as the run
would, with `RecordedWrites` in place of the ledgers and queues; what they were asked to do
comes back as the lines the CLI prints, by name in the mail's wording. The finish's findings
follow (`would_finish`): the products' and groups' own, and those of users gone. A user with
open findings no page held is gone only when Graph no longer has them, as the run's finish
decides (`settle_skipped`): users are paged by position, so one deleted from a page already
read moves the next one onto it.

The ledgers it reads (findings, reprocess ledger) are read once each, whole, into a read-only
`TableSnapshot`: the pipeline's per-user reads are then answered from memory instead of a
table round trip per user with findings, and a write would raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import replace

from shared.catalog.products import catalog
from shared.core.findings import Names
from shared.core.sku_findings import sku_findings
from shared.ports.directory import JSON, USER_SELECT
from shared.ports.licensed_world import LicensedWorld
from shared.ports.paging import FollowedLinks
from shared.ports.tables import Entity, EntityStore, EntityValue, Upserts, check_where
from shared.service.nested import nested_group_findings
from shared.service.reconcile.finish import unread_subjects
from shared.service.reconcile.pages import page_mode
from shared.service.reconcile.run_state import REPORTS, USERS, Options, ReconcileResult, Run
from shared.service.reconcile.scan import (
    evaluate_page,
    member_index,
    open_subjects,
    read_world,
    unlicensed_state_groups,
)
from shared.service.services import Services
from shared.service.user_writes import RecordedWrites
from shared.service.users import settle


def _is_one_of(value: object, wanted: set[str]) -> bool:
    """As the table service compares in `query_where`: a string equal to one of these."""
    return isinstance(value, str) and value in wanted


class TableSnapshot:
    """A table read once, whole: queries are answered from memory; writes are refused (a dry
    run writes nothing)."""

    def __init__(self, table: EntityStore) -> None:
        self.name = table.name
        self._partitions: dict[str, list[Entity]] = {}
        for entity in table.query_all():
            self._partitions.setdefault(entity.partition_key, []).append(entity)

    def get(self, pk: str, rk: str) -> Entity | None:
        return next((e for e in self._partitions.get(pk, ()) if e.row_key == rk), None)

    def query(self, pk: str) -> list[Entity]:
        return list(self._partitions.get(pk, ()))

    def query_all(self) -> Iterator[Entity]:
        return (e for rows in self._partitions.values() for e in rows)

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        wanted = set(check_where(field, values))
        return (e for e in self.query_all() if _is_one_of(e.fields.get(field), wanted))

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        raise self._refused()

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        raise self._refused()

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        raise self._refused()

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        raise self._refused()

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        raise self._refused()

    def _refused(self) -> RuntimeError:
        return RuntimeError(f"the dry run writes nothing (table {self.name})")


def with_ledger_snapshots(svc: Services) -> Services:
    """`svc` whose findings and reprocess ledgers are read-once snapshots."""
    tables = replace(
        svc.tables,
        findings=TableSnapshot(svc.tables.findings),
        reprocessledger=TableSnapshot(svc.tables.reprocessledger),
    )
    return replace(svc, tables=tables)


async def dry_run(svc: Services, run: Run, opts: Options) -> ReconcileResult:
    """What `run` would do, page by page; returns the lines the CLI prints."""
    svc = with_ledger_snapshots(svc)
    world = await read_world(svc.directory, opts.progress)
    index = member_index(world)
    result = ReconcileResult(run.run_id, run.date, "dry-run", baseline=run.baseline)
    result.group_names = world.group_names()
    mode = page_mode(run, open_subjects(svc))  # one table scan, not a query per user
    writes = RecordedWrites(svc, mode.read_at)
    demand: Counter[str] = Counter()
    seen: set[str] = set()

    async def settle_page(users: list[JSON]) -> None:
        unlicensed = await unlicensed_state_groups(svc.directory, world, users)
        tenant, evaluation = evaluate_page(world, index, users, unlicensed)
        writes.page(tenant, Names(tenant, *catalog().names_for(tenant)))
        outcome = await settle(svc, tenant, evaluation, mode, writes)
        result.planned += writes.take_lines()
        result.new += outcome.new_findings
        result.count_page(len(evaluation.users), outcome)
        demand.update(evaluation.seat_demand())
        seen.update(tenant.users)

    link: str | None = None
    followed = FollowedLinks()
    while True:
        users, link = await svc.directory.users_page(link, select=USER_SELECT)
        link = followed.follow(link)  # a cycle (A -> B -> A) stops here
        await settle_page(users)
        if opts.progress:
            opts.progress(USERS, result.users, None)
        if link is None:
            break
    # As the run's finish (`settle_skipped`): the users with open findings no page held whom
    # Graph still has (a deletion during the paging moved them onto a page already read) are
    # one more page, not gone.
    unseen = unseen_subjects(open_subjects(svc), seen)
    skipped = await svc.directory.users_by_id(unseen) if unseen else {}
    if skipped:
        await settle_page(list(skipped.values()))
    would_finish(svc, world, demand, seen, writes, run.run_id, result)
    summary_kind = "baseline summary" if run.baseline else "nightly summary"
    result.planned.append(
        f"write reports under {REPORTS}{run.date}/{run.run_id}/ and send the {summary_kind}"
    )
    return result


def unseen_subjects(subjects: Iterable[str], seen: Collection[str]) -> list[str]:
    """The users among `subjects` (open findings) that no page held."""
    return sorted(s for s in subjects if s and ":" not in s and s not in seen)


def would_finish(
    svc: Services,
    world: LicensedWorld,
    demand: Mapping[str, int],
    seen: set[str],
    writes: RecordedWrites,
    run_id: str,
    result: ReconcileResult,
) -> None:
    """The finish's findings, as `finish` records them: the products' (from the whole
    demand), the groups' own, those of products and groups no longer read, and those of
    users gone from the tenant (open, but on no page)."""
    tenant = world.config_tenant()
    names = Names(tenant, *catalog().names_for(tenant))
    writes.page(tenant, names)
    found = {
        f"sku:{s.id}": sku_findings(s, demand.get(s.id, 0), names) for s in tenant.skus.values()
    }
    found |= {f"group:{g}": f for g, f in nested_group_findings(world).items()}
    subjects = open_subjects(svc)
    for subject in unread_subjects(subjects, tenant.skus.keys(), world.groups.keys()):
        found[subject] = []
    for subject in unseen_subjects(subjects, seen):
        found[subject] = []
    for subject, findings in found.items():
        change = writes.reconcile_findings(subject, findings, run_id, [])
        result.new += change.new
        result.new_findings += len(change.new)
        result.resolved_findings += len(change.resolved)
    result.planned += writes.take_lines()
