"""Building a `HealthReport` from what each caller has: a snapshot file (the whole tenant at
once), or the pages of a live scan and of the nightly run (fed to the builder one at a time by
`shared.cli.report` and `shared.service.reconcile_page`). The parts they share are here: the
migration section, and the history that gives the trends, the previous night and the drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.core.evaluate import evaluate
from shared.core.migration import MigrationPlan, migration_plan
from shared.core.model import Tenant
from shared.render.evaluation import evaluation_json
from shared.render.health_builder import HealthBuilder
from shared.render.health_model import (
    ROWS_PER_CODE,
    HealthReport,
    Migration,
    MigrationRow,
)
from shared.render.history import nights, previous_night, trends
from shared.render.migration import not_yet, where_to_add


def migration_section(
    plan: MigrationPlan,
    tenant: Tenant,
    product: Callable[[str], str],
    rows_per_kind: int = ROWS_PER_CODE,
) -> Migration:
    """Counts of each kind, and the first `rows_per_kind` rows of each, by user name."""
    groups = {g.id: g.name for g in tenant.groups.values()}

    def names(ids: Sequence[str | None]) -> str:
        return ", ".join(groups.get(g or "", g or "direct") for g in ids)

    def plans(sku_id: str, ids: frozenset[str]) -> str:
        sku = tenant.skus.get(sku_id)
        return ", ".join(sorted(sku.plan_name(p) if sku else p for p in ids))

    def row(kind: str, user_id: str, sku_id: str, detail: str) -> MigrationRow:
        user = tenant.users.get(user_id)
        name = user.display_name if user else user_id
        upn = user.user_principal_name if user else ""
        return MigrationRow(kind, user_id, name or upn, upn, product(sku_id), detail)

    kinds: dict[str, list[MigrationRow]] = {
        "safe": [
            row("safe", c.user_id, c.sku_id, f"covered by {names(c.group_ids)}") for c in plan.safe
        ],
        "not-yet": [
            row(
                "not-yet",
                c.user_id,
                c.sku_id,
                not_yet(tenant, c.user_id, c.sku_id, c.unhealthy_group_ids),
            )
            for c in plan.not_yet
        ],
        "would-lose": [
            row("would-lose", p.user_id, p.sku_id, f"would lose {plans(p.sku_id, p.plans)}")
            for p in plan.partly_covered
        ],
        "direct-only": [
            row(
                "direct-only",
                u,
                s.sku_id,
                "move to "
                + (
                    names(s.existing_group_ids) + where_to_add(tenant, s.existing_group_ids)
                    if s.existing_group_ids
                    else s.suggested_name
                ),
            )
            for s in plan.direct_only
            for u in s.user_ids
        ],
    }
    counts = {kind: len(rows) for kind, rows in kinds.items()}
    kept = tuple(
        r
        for rows in kinds.values()
        for r in sorted(rows, key=lambda r: (r.name.lower(), r.product))[:rows_per_kind]
    )
    return Migration(counts, kept)


def finish_report(
    builder: HealthBuilder,
    *,
    tenant: str,
    generated_at: str,
    source: str,
    demand: Mapping[str, int],
    members: Mapping[str, int],
    history: Sequence[Mapping[str, Any]],
    date: str,
    tonight: Mapping[str, Any] | None = None,
    migration: Migration | None = None,
    prices: Mapping[str, float] | None = None,
) -> HealthReport:
    """The history gives the trend (the last 90 nights up to `date`), the night to compare
    with, and the configuration drift. `tonight` is the run's own summary (nightly): its drift
    is the page's, and the comparison is with the night before; otherwise (the command line)
    the comparison and the drift are the latest stored night's."""
    records = nights([*history, *([tonight] if tonight else [])], until=date)
    if tonight is not None:
        previous = previous_night(records, date)
        drift_from: Mapping[str, Any] | None = tonight
    else:
        previous = records[-1] if records else None
        drift_from = previous
    return builder.build(
        tenant=tenant,
        generated_at=generated_at,
        source=source,
        demand=demand,
        members=members,
        previous=previous,
        drift=list((drift_from or {}).get("drift") or ()),
        drift_date=str(drift_from["date"]) if drift_from else None,
        migration=migration,
        trends=trends(records),
        prices=prices,
    )


def report_from_snapshot(
    tenant: Tenant,
    *,
    source: str,
    generated_at: str,
    history: Sequence[Mapping[str, Any]] = (),
    prices: Mapping[str, float] | None = None,
    rows_per_code: int = ROWS_PER_CODE,
) -> HealthReport:
    names = catalog()
    evaluation = evaluate(tenant, *names.names_for(tenant), plan_conflicts())
    document = evaluation_json(evaluation, tenant)
    builder = HealthBuilder(
        tenant.skus.values(), tenant.groups.values(), names.product, rows_per_code
    )
    builder.add_users(document["users"])
    for part in (*document["groups"], *document["skus"]):
        builder.add_findings(part["findings"])
    demand = evaluation.seat_demand()
    licenses = {r.user.id: r.licenses for r in evaluation.users}
    plan = migration_plan(tenant, licenses)
    product = builder.product
    org = tenant.organization
    return finish_report(
        builder,
        tenant=org.display_name if org else "",
        generated_at=generated_at,
        source=source,
        demand=demand,
        members={g.id: len(g.member_user_ids) for g in tenant.groups.values()},
        history=history,
        date=generated_at[:10],
        migration=migration_section(plan, tenant, product, rows_per_code),
        prices=prices,
    )
