"""The direct -> group migration plan report: its CSV rows, JSON document and table.

The CSV header is a contract (see README); the rows go through `csvsafe.write_rows`. The
script that removes the safe direct assignments is `render.migration_script`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.catalog.products import Catalog
from shared.core.coverage_findings import WAIT
from shared.core.direct_coverage import unready_paths
from shared.core.findings import Names, membership_fix
from shared.core.migration import MigrationPlan
from shared.core.model import Tenant
from shared.core.wording import counted
from shared.render.tenant_names import TenantNames
from shared.render.terminal_text import printable_lines

MIGRATION_CSV_HEADER = (
    "category",
    "userId",
    "userPrincipalName",
    "displayName",
    "skuId",
    "skuPartNumber",
    "productName",
    "groups",
    "plans",
    "suggestedGroup",
    "action",
)


_REMOVE_GRADUALLY = (
    "remove the direct assignment gradually, a small batch first, and check the users keep "
    "their services"
)


def where_to_add(tenant: Tenant, group_ids: tuple[str, ...]) -> str:
    """Where each existing group that is dynamic or synced from on-premises takes a member: not
    in the admin center (a dynamic group takes none by hand)."""
    names = Names(tenant)
    fixes = [
        membership_fix(group, names, group.id)
        for group in (tenant.groups[g] for g in group_ids)
        if group.membership_rule or group.synced_from_on_premises
    ]
    return f" ({'; '.join(fixes)})" if fixes else ""


def not_yet(tenant: Tenant, user_id: str, sku_id: str, group_ids: tuple[str | None, ...]) -> str:
    """Why each covering group path is not yet Active without errors with every plan its group
    enables, and what to do: mid-migration it is mostly one Entra has not processed yet, to wait
    for, not to fix. From the user's states (`core.direct_coverage.unready_paths`, as the
    RedundantDirectAssignment finding); a tenant without them (the nightly's) names both."""
    names = TenantNames(tenant, tenant)
    user = tenant.users.get(user_id)
    if user is None or not user.states:
        why = (
            "not yet Active without errors with every plan it enables (still processing: "
            "wait for it; in error: fix that first)"
        )
        return "; ".join(f"{names.group(group_id)}: {why}" for group_id in group_ids)
    reasons = []
    for path in unready_paths(user, sku_id, group_ids):
        if path.error:
            why = f"in error ({path.error}): fix that first"
        elif path.state is None:
            why = f"Entra has not applied it to the user yet: {WAIT}"
        elif path.state != "Active":
            why = f"its path is {path.state}: {WAIT}"
        else:
            why = f"still disables plans the group now enables: {WAIT}"
        reasons.append(f"{names.group(path.group_id)}: {why}")
    return "; ".join(reasons)


def migration_rows(plan: MigrationPlan, tenant: Tenant, catalog: Catalog) -> Iterator[list[str]]:
    """One row per direct assignment in the plan (cells not yet neutralised; see write_rows)."""
    names = TenantNames(tenant, tenant, catalog)

    def head(user_id: str, sku_id: str) -> list[str]:
        display, upn = names.user(user_id)
        return [user_id, upn, display, sku_id, names.part(sku_id), names.product(sku_id)]

    for c in plan.covered:
        groups = ";".join(names.group(g) for g in c.group_ids)
        if c.safe:
            yield [
                "removal-candidate",
                *head(c.user_id, c.sku_id),
                groups,
                "",
                "",
                _REMOVE_GRADUALLY,
            ]
        else:
            yield [
                "not-yet",
                *head(c.user_id, c.sku_id),
                groups,
                "",
                "",
                not_yet(tenant, c.user_id, c.sku_id, c.unhealthy_group_ids),
            ]
    for p in plan.partly_covered:
        yield [
            "would-drop-plans",
            *head(p.user_id, p.sku_id),
            ";".join(names.group(g) for g in p.group_ids),
            ";".join(names.plans(p.sku_id, p.plans)),
            "",
            "keep the direct assignment, or first enable these plans in a licensing group",
        ]
    for s in plan.direct_only:
        existing = ";".join(names.group(g) for g in s.existing_group_ids)
        for user_id in s.user_ids:
            yield [
                "direct-only",
                *head(user_id, s.sku_id),
                existing,
                ";".join(names.plans(s.sku_id, s.disabled_plans)),
                s.suggested_name,
                f"add to {existing}{where_to_add(tenant, s.existing_group_ids)}"
                if existing
                else f"create {s.suggested_name} and add",
            ]


def migration_json(plan: MigrationPlan, tenant: Tenant) -> dict[str, Any]:
    names = TenantNames(tenant, tenant)

    def user(user_id: str) -> dict[str, str]:
        display, upn = names.user(user_id)
        return {"id": user_id, "userPrincipalName": upn, "displayName": display}

    def sku(sku_id: str) -> dict[str, str]:
        return {"skuId": sku_id, "skuPartNumber": names.part(sku_id)}

    return {
        "removalCandidates": [
            {
                "user": user(c.user_id),
                **sku(c.sku_id),
                "groups": [names.path_json(g) for g in c.group_ids],
                "safe": c.safe,
                "unhealthyGroups": [names.path_json(g) for g in c.unhealthy_group_ids],
            }
            for c in plan.covered
        ],
        "wouldDropPlans": [
            {
                "user": user(p.user_id),
                **sku(p.sku_id),
                "groups": [names.path_json(g) for g in p.group_ids],
                "plans": names.plans(p.sku_id, p.plans),
            }
            for p in plan.partly_covered
        ],
        "directOnly": [
            {
                **sku(s.sku_id),
                "disabledPlans": names.plans(s.sku_id, s.disabled_plans),
                "enabledPlans": s.enabled_plans,
                "suggestedGroupName": s.suggested_name,
                "existingGroups": [names.path_json(g) for g in s.existing_group_ids],
                "users": [user(u) for u in s.user_ids],
            }
            for s in plan.direct_only
        ],
    }


def render_migration_table(plan: MigrationPlan, tenant: Tenant, catalog: Catalog) -> str:
    names = TenantNames(tenant, tenant, catalog)
    org = tenant.organization

    def who(user_id: str) -> str:
        display, upn = names.user(user_id)
        return f"{display} <{upn}>"

    def by_name(user_id: str) -> str:
        return names.user(user_id)[0].lower()

    lines = [
        "Direct -> group migration plan"
        + (f" for {org.display_name}" if org else "")
        + ": add users to licensing groups first, check the group path is active without "
        "errors, then remove direct assignments gradually, a small batch first. Never remove "
        "first.",
        "",
        f"REMOVAL CANDIDATES, SAFE ({len(plan.safe)}): fully covered by active group paths",
    ]
    for c in sorted(plan.safe, key=lambda c: by_name(c.user_id)):
        groups = ", ".join(names.group(g) for g in c.group_ids)
        lines.append(f"  {who(c.user_id)}: {names.product(c.sku_id)} covered by {groups}")
    if plan.safe:
        lines.append(f"      action: {_REMOVE_GRADUALLY}")
    lines += [
        "",
        f"NOT YET ({len(plan.not_yet)}): covered, but a group path is not yet Active without "
        "errors",
    ]
    for c in sorted(plan.not_yet, key=lambda c: by_name(c.user_id)):
        why = not_yet(tenant, c.user_id, c.sku_id, c.unhealthy_group_ids)
        lines.append(f"  {who(c.user_id)}: {names.product(c.sku_id)}; {why}")
    lines += [
        "",
        f"WOULD DROP PLANS ({len(plan.partly_covered)}): keep the direct assignment for now",
    ]
    for p in sorted(plan.partly_covered, key=lambda p: by_name(p.user_id)):
        groups = ", ".join(names.group(g) for g in p.group_ids)
        lost = names.plans(p.sku_id, p.plans)
        lines.append(
            f"  {who(p.user_id)}: {names.product(p.sku_id)} via {groups}; removing the direct "
            f"assignment would lose {len(lost)} plan(s): {', '.join(lost)}"
        )
    users = sum(len(s.user_ids) for s in plan.direct_only)
    lines += [
        "",
        f"HELD ONLY DIRECTLY ({counted(len(plan.direct_only), 'product/plan set')}, "
        f"{counted(users, 'user')}): "
        "one licensing group each",
    ]
    for s in plan.direct_only:
        total = names.total_plans(s.sku_id)
        off = ", ".join(names.plans(s.sku_id, s.disabled_plans)) or "nothing"
        lines.append(
            f"  {names.product(s.sku_id)} [{names.part(s.sku_id)}], {s.enabled_plans}/{total} "
            f"plans (disabled: {off}): {len(s.user_ids)} user(s)"
        )
        if s.existing_group_ids:
            existing = ", ".join(names.group(g) for g in s.existing_group_ids)
            lines.append(
                f"      existing group with exactly these plans: {existing}"
                + where_to_add(tenant, s.existing_group_ids)
            )
        else:
            lines.append(
                f"      suggested group: {s.suggested_name} (assign {names.part(s.sku_id)}, "
                f"disable: {off})"
            )
        lines.append("      users: " + ", ".join(who(u) for u in sorted(s.user_ids, key=by_name)))
    return printable_lines(lines) + "\n"
