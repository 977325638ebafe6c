"""Users' gains and losses of effective licenses and the seats they need, as JSON and as table
lines: the part the what-if and the drift reports share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.core.dataloss import LABELS as DATA_LOSS_LABELS
from shared.core.dataloss import CapabilityLoss
from shared.core.drift import (
    GAINED,
    LOST,
    SeatDelta,
    UserDelta,
)
from shared.core.whatif import (
    WhatIf,
)
from shared.core.wording import counted
from shared.render.findings import finding_json, finding_lines
from shared.render.predict import (
    user_predicted_lines,
)
from shared.render.tenant_names import TenantNames


def user_delta_json(delta: UserDelta, names: TenantNames) -> dict[str, Any]:
    display, upn = names.user(delta.user_id)
    return {
        "id": delta.user_id,
        "userPrincipalName": upn,
        "displayName": display,
        "licenses": [
            {
                "skuId": s.sku_id,
                "skuPartNumber": names.part(s.sku_id),
                "change": s.status,
                "plansEnabled": names.plans(s.sku_id, s.plans_enabled),
                "plansDisabled": names.plans(s.sku_id, s.plans_disabled),
                "pathsBefore": [names.path_json(p) for p in s.paths_before],
                "pathsAfter": [names.path_json(p) for p in s.paths_after],
            }
            for s in delta.skus
        ],
        "capabilitiesLost": [_loss_json(loss, names) for loss in delta.losses],
        "findings": [finding_json(delta.finding)] if delta.finding else [],
    }


def _loss_json(loss: CapabilityLoss, names: TenantNames) -> dict[str, Any]:
    return {
        "capability": loss.capability,
        "label": DATA_LOSS_LABELS.get(loss.capability, loss.capability),
        "before": [
            {
                "skuId": g.sku_id,
                "skuPartNumber": names.part(g.sku_id),
                "servicePlanId": g.plan_id,
                "servicePlanName": names.plan_code(g.sku_id, g.plan_id),
                "paths": [names.path_json(p) for p in g.group_ids],
            }
            for g in loss.before
        ],
    }


def seat_json(seat: SeatDelta, names: TenantNames) -> dict[str, Any]:
    return {
        "skuId": seat.sku_id,
        "skuPartNumber": names.part(seat.sku_id),
        "demandBefore": seat.demand_before,
        "demandAfter": seat.demand_after,
        "prepaidEnabled": seat.prepaid_enabled,
        "shortfall": seat.shortfall,
    }


def data_plans_lost(delta: UserDelta, names: TenantNames, data_plans: frozenset[str]) -> list[str]:
    """Data-bearing plans (mailbox, OneDrive) the user would no longer have from a product."""
    return sorted(
        {
            names.plan_code(s.sku_id, p)
            for s in delta.skus
            for p in s.plans_disabled
            if p.lower() in data_plans
        }
    )


def sorted_deltas(deltas: Iterable[UserDelta], names: TenantNames) -> list[UserDelta]:
    """Users at risk of data loss first, then by display name."""
    return sorted(deltas, key=lambda d: (not d.losses, names.user(d.user_id)[0].lower()))


def delta_lines(delta: UserDelta, names: TenantNames, result: WhatIf | None = None) -> list[str]:
    display, upn = names.user(delta.user_id)
    lines = [f"  {display} <{upn}>"]
    data_lost = data_plans_lost(delta, names, result.data_plans) if result else []
    for s in delta.skus:
        product, total = names.product(s.sku_id), names.total_plans(s.sku_id)
        before = ", ".join(names.group(p) for p in s.paths_before)
        after = ", ".join(names.group(p) for p in s.paths_after)
        if s.status == GAINED:
            text = f"+ {product}: gained, {s.enabled_after}/{total} plans via {after}"
        elif s.status == LOST:
            text = f"- {product}: lost (had {s.enabled_before}/{total} plans via {before})"
        else:
            text = f"~ {product}: {s.enabled_before}/{total} -> {s.enabled_after}/{total} plans"
            if s.plans_enabled:
                text += f"; now enabled: {', '.join(names.plans(s.sku_id, s.plans_enabled))}"
            if s.plans_disabled:
                text += f"; now disabled: {', '.join(names.plans(s.sku_id, s.plans_disabled))}"
            if s.paths_before != s.paths_after:
                text += f"; via {before} -> via {after}"
        lines.append(f"      {text}")
    if data_lost:
        lines.append(f"      ! data-bearing plans lost from a product: {', '.join(data_lost)}")
    if delta.finding is not None:
        lines += finding_lines(delta.finding, indent="      ")
    if result is not None:
        lines += user_predicted_lines(result.predictions.for_user(delta.user_id), "      ")
    return lines


def seat_lines(seats: Sequence[SeatDelta], names: TenantNames) -> list[str]:
    lines = [f"SEATS ({len(seats)} product(s) with changed demand or short of seats)"]
    for seat in seats:
        lines.append(
            f"  {names.product(seat.sku_id)} [{names.part(seat.sku_id)}]: should be held by "
            f"{seat.demand_before} -> {seat.demand_after} ({seat.change:+d}{_failing(seat)}), "
            f"{counted(seat.prepaid_enabled, 'seat')} enabled"
            + (f", SHORTFALL {seat.shortfall}" if seat.shortfall else "")
        )
    return lines


def _failing(seat: SeatDelta) -> str:
    if not seat.failing:
        return ""
    return f", not counting {counted(seat.failing, 'user')} a predicted error fails"


def users_section(
    deltas: Sequence[UserDelta], names: TenantNames, result: WhatIf | None = None
) -> list[str]:
    at_risk = sum(1 for d in deltas if d.losses)
    lines = [f"AFFECTED USERS ({len(deltas)}, {at_risk} at risk of data loss)"]
    for delta in sorted_deltas(deltas, names):
        lines += delta_lines(delta, names, result)
    return lines


def verdict(deltas: Sequence[UserDelta]) -> str:
    at_risk = [d for d in deltas if d.losses]
    if not at_risk:
        return "No data-loss risk: no affected user loses a mailbox or OneDrive they had."
    return (
        f"DATA-LOSS RISK for {len(at_risk)} user(s): see DataLossRisk above before making "
        "this change."
    )


def impact_lines(
    deltas: Sequence[UserDelta],
    seats: Sequence[SeatDelta],
    names: TenantNames,
    result: WhatIf | None = None,
) -> list[str]:
    """The tables' common ending: affected users, seats, then the data-loss verdict."""
    return [
        *users_section(deltas, names, result),
        "",
        *seat_lines(seats, names),
        "",
        verdict(deltas),
    ]
