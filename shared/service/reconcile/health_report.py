"""The licensing health page from a scan: live (the command line's ``report html --live``) or
the nightly reconciliation's stored pages, which also writes it to the reports container as
``<date>/report.html`` and ``latest/report.html``, with the night's history record.

Both feed `HealthBuilder` one page of users at a time, so memory stays bounded by a page and
the capped tables, as in the reconciliation itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from shared.catalog.products import catalog
from shared.core.findings import Names
from shared.core.model import Tenant
from shared.core.sku_findings import sku_findings
from shared.ports.blobs import BlobStore
from shared.ports.directory import JSON, USER_SELECT
from shared.ports.licensed_world import LicensedWorld
from shared.ports.paging import FollowedLinks
from shared.render.evaluation import evaluation_json
from shared.render.findings import finding_json
from shared.render.health_builder import HealthBuilder
from shared.render.health_model import HEALTH_KEYS, ROWS_PER_CODE, HealthReport
from shared.render.health_page import render_health_page
from shared.render.health_sources import finish_report, migration_section
from shared.render.history import (
    HISTORY_DAYS,
    HISTORY_PREFIX,
    history_name,
    history_record,
    load_history_blobs,
)
from shared.service.nested import nested_group_findings
from shared.service.reconcile.outputs import assemble_migration, page_checks
from shared.service.reconcile.scan import (
    evaluate_page,
    member_index,
    read_world,
    unlicensed_state_groups,
)

LATEST_PAGE: Final = "latest/report.html"
HTML: Final = "text/html; charset=utf-8"
_DATED_PAGE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}/report\.html$")


def page_name(date: str) -> str:
    return f"{date}/report.html"


def _builder(tenant: Tenant, rows_per_code: int) -> HealthBuilder:
    return HealthBuilder(
        tenant.skus.values(), tenant.groups.values(), catalog().product, rows_per_code
    )


def _sku_findings(tenant: Tenant, demand: Mapping[str, int]) -> list[JSON]:
    names = Names(tenant, *catalog().names_for(tenant))
    return [
        finding_json(f)
        for sku in tenant.skus.values()
        for f in sku_findings(sku, int(demand.get(sku.id, 0)), names)
    ]


def _finish(
    builder: HealthBuilder,
    world: LicensedWorld,
    demand: Mapping[str, int],
    migration_parts: Iterable[JSON],
    *,
    source: str,
    generated_at: str,
    history: Sequence[Mapping[str, Any]],
    date: str,
    tonight: Mapping[str, Any] | None,
    prices: Mapping[str, float] | None,
) -> HealthReport:
    plan, migration_tenant = assemble_migration(migration_parts, world)
    return finish_report(
        builder,
        tenant=world.organization_name,
        generated_at=generated_at,
        source=source,
        demand=demand,
        members={gid: len(ids) for gid, ids in world.members.items()},
        history=history,
        date=date,
        tonight=tonight,
        migration=migration_section(plan, migration_tenant, builder.product, builder.rows_per_code),
        prices=prices,
    )


async def live_report(
    directory: Any,
    *,
    now: datetime,
    history: Sequence[Mapping[str, Any]] = (),
    prices: Mapping[str, float] | None = None,
    rows_per_code: int = ROWS_PER_CODE,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> HealthReport:
    """Scan the tenant page by page (the reconciliation's reads) into a report."""
    world = await read_world(directory, progress)
    index = member_index(world)
    tenant = world.config_tenant()
    builder = _builder(tenant, rows_per_code)
    demand: Counter[str] = Counter()
    parts: list[JSON] = []
    link: str | None = None
    followed = FollowedLinks()
    while True:
        users, link = await directory.users_page(link, select=USER_SELECT)
        link = followed.follow(link)  # a cycle (A -> B -> A) stops here
        unlicensed = await unlicensed_state_groups(directory, world, users)
        page_tenant, evaluation = evaluate_page(world, index, users, unlicensed)
        builder.add_users(evaluation_json(evaluation, page_tenant)["users"])
        demand.update(evaluation.seat_demand())
        parts.append(page_checks(evaluation, page_tenant).migration)
        if progress:
            progress("users", builder.users, None)
        if link is None:
            break
    builder.add_findings(_sku_findings(tenant, demand))
    builder.add_findings(  # the nightly scan's group findings (nested groups), as in a snapshot
        finding_json(f) for found in nested_group_findings(world).values() for f in found
    )
    return _finish(
        builder,
        world,
        demand,
        parts,
        source="a live scan",
        generated_at=now.isoformat(timespec="seconds"),
        history=history,
        date=now.date().isoformat(),
        tonight=None,
        prices=prices,
    )


def write_nightly_page(
    blobs: BlobStore,
    world: LicensedWorld,
    user_pages: Iterable[bytes],
    migration_parts: Iterable[JSON],
    subject_found: Iterable[JSON],
    demand: Mapping[str, int],
    summary: Mapping[str, Any],
    *,
    now: datetime,
    prices: Mapping[str, float] | None = None,
    retention_days: int | None = 30,
) -> list[str]:
    """Render tonight's page from the run's stored pages (users.jsonl) and the findings about
    products and groups (`sku:<id>`, `group:<id>`) the finish recorded, keep the night's
    history record, prune old records (and dated pages past `retention_days`, unless None);
    returns the blob names written. Safe to repeat: the same date overwrites the same blobs."""
    tenant = world.config_tenant()
    builder = _builder(tenant, ROWS_PER_CODE)
    for page in user_pages:
        builder.add_users(orjson.loads(line) for line in page.splitlines() if line)
    builder.add_findings(subject_found)
    date = str(summary["date"])
    report = _finish(
        builder,
        world,
        demand,
        migration_parts,
        source=f"the nightly reconciliation {summary.get('run_id', '')}".rstrip(),
        generated_at=now.isoformat(timespec="seconds"),
        history=load_history_blobs(blobs),
        date=date,
        tonight=history_record(summary, {}),
        prices=prices,
    )
    record = history_record(
        summary, {h: c.value for h, c in zip(HEALTH_KEYS, report.health, strict=True)}
    )
    blobs.put(history_name(date), orjson.dumps(record), content_type="application/json")
    html = render_health_page(report).encode("utf-8")
    blobs.put(page_name(date), html, content_type=HTML)
    blobs.put(LATEST_PAGE, html, content_type=HTML)
    blobs.delete_older_than(HISTORY_PREFIX, now - timedelta(days=HISTORY_DAYS))
    if retention_days is not None:  # None: the CLI's run, whose setting is not the app's
        cutoff = (now - timedelta(days=retention_days)).date().isoformat()
        for name in blobs.list(""):
            if _DATED_PAGE.match(name) and name[:10] < cutoff:
                blobs.delete(name)
    return [page_name(date), LATEST_PAGE]
