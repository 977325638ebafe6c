"""The drift report between two snapshots (`license-guard diff`): its JSON document and its
table: licensed groups and products changed, users' gains and losses, seats.
"""

from __future__ import annotations

from typing import Any

from shared.catalog.products import Catalog
from shared.core.drift import (
    ADDED,
    CHANGED,
    GAINED,
    LOST,
    REMOVED,
    Drift,
    GroupDrift,
    SkuDrift,
)
from shared.core.graph_values import prepaid_units_document
from shared.core.model import PrepaidUnits, Tenant
from shared.render.tenant_names import TenantNames
from shared.render.terminal_text import printable_lines
from shared.render.user_deltas import (
    impact_lines,
    seat_json,
    sorted_deltas,
    user_delta_json,
)


def _group_drift_json(drift: GroupDrift, names: TenantNames) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": drift.group_id,
        "displayName": drift.name,
        "status": drift.status,
        "skusAdded": [names.part(s) for s in drift.skus_added],
        "skusRemoved": [names.part(s) for s in drift.skus_removed],
        "disabledPlansChanged": [
            {
                "skuId": c.sku_id,
                "skuPartNumber": names.part(c.sku_id),
                "nowDisabled": names.plans(c.sku_id, c.newly_disabled),
                "nowEnabled": names.plans(c.sku_id, c.newly_enabled),
            }
            for c in drift.plan_changes
        ],
        "membersAdded": list(drift.members_added),
        "membersRemoved": list(drift.members_removed),
    }
    if drift.rule_changed:
        doc["membershipRule"] = {"before": drift.rule_before, "after": drift.rule_after}
    return doc


def _prepaid_json(units: PrepaidUnits | None) -> dict[str, int] | None:
    return None if units is None else prepaid_units_document(units)


def _sku_drift_json(drift: SkuDrift, names: TenantNames) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "skuId": drift.sku_id,
        "skuPartNumber": names.part(drift.sku_id),
        "status": drift.status,
        "newPlans": [
            {
                "servicePlanId": p.plan_id,
                "servicePlanName": names.plan_code(drift.sku_id, p.plan_id),
                "groups": [names.path_json(g) for g in p.group_ids],
                "users": p.users,
            }
            for p in drift.new_plans
        ],
        "removedPlans": names.plans(drift.sku_id, drift.removed_plans),
    }
    if drift.prepaid_changed:
        doc["prepaidUnits"] = {
            "before": _prepaid_json(drift.prepaid_before),
            "after": _prepaid_json(drift.prepaid_after),
        }
    return doc


def diff_json(drift: Drift, old: Tenant, new: Tenant) -> dict[str, Any]:
    """The drift as one JSON document: groups, skus, users, seats, dataLossRisk."""
    names = TenantNames(old, new)
    return {
        "groups": [_group_drift_json(g, names) for g in drift.groups],
        "skus": [_sku_drift_json(s, names) for s in drift.skus],
        "users": [user_delta_json(u, names) for u in sorted_deltas(drift.users, names)],
        "seats": [seat_json(s, names) for s in drift.seats],
        "dataLossRisk": bool(drift.losses),
    }


_GROUP_STATUS = {
    GAINED: "now assigns licenses",
    LOST: "no longer assigns licenses",
    ADDED: "new licensed group",
    # A snapshot lists licensed groups only, and Entra deletes no group that assigns licenses
    REMOVED: (
        "no longer a licensed group (its licenses were removed; it may since have been deleted)"
    ),
    CHANGED: "changed",
}


def _group_drift_lines(drift: GroupDrift, names: TenantNames) -> list[str]:
    lines = [f"  {drift.name}: {_GROUP_STATUS.get(drift.status, drift.status)}"]
    if drift.skus_added:
        added = ", ".join(names.product(s) for s in drift.skus_added)
        lines.append(f"      + assigns {added}")
    if drift.skus_removed:
        removed = ", ".join(names.product(s) for s in drift.skus_removed)
        lines.append(f"      - no longer assigns {removed}")
    for change in drift.plan_changes:
        parts = []
        if change.newly_disabled:
            parts.append(
                f"now disabled: {', '.join(names.plans(change.sku_id, change.newly_disabled))}"
            )
        if change.newly_enabled:
            parts.append(
                f"now enabled: {', '.join(names.plans(change.sku_id, change.newly_enabled))}"
            )
        lines.append(f"      ~ {names.product(change.sku_id)}: {'; '.join(parts)}")
    if drift.rule_changed:
        lines.append(
            f"      ~ membership rule: {drift.rule_before or '(none, assigned)'} -> "
            f"{drift.rule_after or '(none, assigned)'}"
        )
    if drift.members_added or drift.members_removed:
        lines.append(f"      members: +{len(drift.members_added)} / -{len(drift.members_removed)}")
    return lines


def _sku_drift_lines(drift: SkuDrift, names: TenantNames) -> list[str]:
    head = f"  {names.product(drift.sku_id)} [{names.part(drift.sku_id)}]"
    if drift.status == ADDED:
        return [f"{head}: new subscription"]
    if drift.status == REMOVED:
        return [f"{head}: no longer subscribed"]
    lines = [f"{head}:"]
    for plan in drift.new_plans:
        reached = ", ".join(names.group(g) for g in plan.group_ids) or "no group"
        lines.append(
            f"      + new service plan {names.plans(drift.sku_id, [plan.plan_id])[0]} "
            f"({names.plan_code(drift.sku_id, plan.plan_id)}): Microsoft enables new plans by "
            f"default, so it reaches {reached} ({plan.users} direct members); disable it in "
            "those groups if it is not wanted"
        )
    if drift.removed_plans:
        gone = ", ".join(names.plans(drift.sku_id, drift.removed_plans))
        lines.append(f"      - service plans no longer in the product: {gone}")
    if drift.prepaid_changed and drift.prepaid_before and drift.prepaid_after:
        b, a = drift.prepaid_before, drift.prepaid_after
        lines.append(
            f"      ~ seats enabled {b.enabled} -> {a.enabled}, warning {b.warning} -> "
            f"{a.warning}, suspended {b.suspended} -> {a.suspended}, locked out "
            f"{b.locked_out} -> {a.locked_out}"
        )
    return lines


def render_diff_table(drift: Drift, old: Tenant, new: Tenant, catalog: Catalog) -> str:
    names = TenantNames(old, new, catalog)
    lines = [f"LICENSED GROUPS CHANGED ({len(drift.groups)})"]
    for group in drift.groups:
        lines += _group_drift_lines(group, names)
    lines += ["", f"PRODUCTS CHANGED ({len(drift.skus)})"]
    for sku in drift.skus:
        lines += _sku_drift_lines(sku, names)
    lines += ["", *impact_lines(drift.users, drift.seats, names)]
    return printable_lines(lines) + "\n"
