"""The assignment-path report: one CSV row per user x SKU x path, what should be and Graph's state.

The header is a contract that scripts rely on (see README, "evaluate output"). Cells are
neutralised against spreadsheet formula injection (`render.csvsafe`), since display names come
from the directory and anyone can set their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from shared.catalog.products import Catalog
from shared.core.evaluate import Evaluation
from shared.core.links import group_license_url, user_license_url
from shared.core.model import AssignmentState, Tenant, normalize_error
from shared.render.csvsafe import write_rows
from shared.render.tenant_names import PlanNames

CSV_HEADER = (
    "userId",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
    "skuId",
    "skuPartNumber",
    "productName",
    "pathType",
    "groupId",
    "groupName",
    "enabledPlans",
    "disabledPlans",
    "state",
    "error",
    "userLicensesUrl",
    "groupUrl",
)


def path_rows(evaluation: Evaluation, tenant: Tenant, catalog: Catalog) -> Iterator[list[str]]:
    """One row per user × SKU × path: what should be, with Graph's state for that path.

    Paths Graph still reports but that no longer apply (stale) are listed too, with the plans
    Graph shows, so the export is the full picture of who holds what and why.
    """
    plans = PlanNames(tenant)
    for report in evaluation.users:
        user = report.user
        reported = {(s.sku_id, s.assigned_by_group): s for s in user.states}
        head = [user.id, user.user_principal_name, user.display_name, str(user.account_enabled)]
        wanted = set()
        for lic in report.licenses:
            for path in lic.paths:
                wanted.add((lic.sku_id, path.group_id))
                yield _row(
                    head,
                    tenant,
                    catalog,
                    sku_id=lic.sku_id,
                    group_id=path.group_id,
                    state=reported.get((lic.sku_id, path.group_id)),
                    enabled=plans.names(lic.sku_id, path.enabled_plans),
                    disabled=plans.names(
                        lic.sku_id, tenant.skus[lic.sku_id].plan_ids - path.enabled_plans
                    ),
                )
        for key, state in reported.items():
            sku = tenant.skus.get(state.sku_id)
            if key in wanted or sku is None:
                continue
            yield _row(
                head,
                tenant,
                catalog,
                sku_id=state.sku_id,
                group_id=state.assigned_by_group,
                state=state,
                enabled=plans.names(sku.id, sku.plan_ids - state.disabled_plans),
                disabled=plans.names(sku.id, state.disabled_plans),
                stale=True,
            )


def _row(
    head: list[str],
    tenant: Tenant,
    catalog: Catalog,
    *,
    sku_id: str,
    group_id: str | None,
    state: AssignmentState | None,
    enabled: list[str],
    disabled: list[str],
    stale: bool = False,
) -> list[str]:
    sku = tenant.skus[sku_id]
    group = tenant.groups.get(group_id or "")
    if state is None:
        state_text, error = "Pending", ""
    else:
        state_text = state.state + (" (stale)" if stale else "")
        error = normalize_error(state.error) or ""
    return [
        *head,
        sku_id,
        sku.part_number,
        catalog.product(sku_id, sku.part_number),
        "direct" if group_id is None else "group",
        group_id or "",
        group.name if group else "",
        ";".join(enabled),
        ";".join(disabled),
        state_text,
        error,
        user_license_url(head[0]),
        group_license_url(group_id) if group_id else "",
    ]


def write_csv(rows: Iterable[list[str]], out: IO[str]) -> None:
    """The assignment-path CSV: the header, then `rows` (from `path_rows`)."""
    write_rows(CSV_HEADER, rows, out)
