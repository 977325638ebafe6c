"""The what-if report (planned changes applied to a snapshot): its JSON document and its table."""

from __future__ import annotations

from typing import Any

from shared.catalog.products import Catalog
from shared.core.model import Tenant
from shared.core.whatif import (
    AddMember,
    AddSku,
    Change,
    DeleteGroup,
    RemoveSku,
    SetDisabledPlans,
    WhatIf,
)
from shared.render.predict import (
    predicted_json,
    predicted_lines,
    seat_need_json,
)
from shared.render.tenant_names import TenantNames
from shared.render.terminal_text import printable_lines
from shared.render.user_deltas import (
    data_plans_lost,
    impact_lines,
    seat_json,
    sorted_deltas,
    user_delta_json,
)


def _change_json(change: Change, names: TenantNames) -> dict[str, Any]:
    doc: dict[str, Any] = {"groupId": change.group_id, "groupName": names.group(change.group_id)}
    if isinstance(change, DeleteGroup):
        return {"type": "deleteGroup", **doc}
    if isinstance(change, RemoveSku):
        return {
            "type": "removeSku",
            **doc,
            "skuId": change.sku_id,
            "skuPartNumber": names.part(change.sku_id),
        }
    if isinstance(change, SetDisabledPlans | AddSku):
        kind = "addSku" if isinstance(change, AddSku) else "setDisabledPlans"
        return {
            "type": kind,
            **doc,
            "skuId": change.sku_id,
            "skuPartNumber": names.part(change.sku_id),
            "disabledPlans": names.plans(change.sku_id, change.disabled_plans),
        }
    _display, upn = names.user(change.user_id)
    kind = "addMember" if isinstance(change, AddMember) else "removeMember"
    return {"type": kind, **doc, "userId": change.user_id, "userPrincipalName": upn}


def whatif_json(result: WhatIf, tenant: Tenant) -> dict[str, Any]:
    """The what-if as one JSON document: changes, notes, affected users (with their predicted
    errors and data-bearing plans lost), seats, predicted errors and dataLossRisk."""
    names = TenantNames(tenant, result.tenant_after)
    users = []
    for delta in sorted_deltas(result.users, names):
        doc = user_delta_json(delta, names)
        doc["dataPlansLost"] = data_plans_lost(delta, names, result.data_plans)
        doc["predictedErrors"] = [
            predicted_json(e) for e in result.predictions.for_user(delta.user_id)
        ]
        users.append(doc)
    return {
        "changes": [_change_json(c, names) for c in result.changes],
        "notes": list(result.notes),
        "users": users,
        "skus": [seat_json(s, names) for s in result.seats],
        "seatsNeeded": [seat_need_json(n, names.part(n.sku_id)) for n in result.predictions.seats],
        "predictedErrors": sum(1 for e in result.predictions.errors if e.severity == "error"),
        "dataLossRisk": result.data_loss,
    }


def _change_text(change: Change, names: TenantNames) -> str:
    group = names.group(change.group_id)
    if isinstance(change, DeleteGroup):
        return f"x delete {group}"
    if isinstance(change, RemoveSku):
        return f"- remove {names.product(change.sku_id)} from {group}"
    if isinstance(change, AddSku):
        off = ", ".join(names.plans(change.sku_id, change.disabled_plans)) or "nothing"
        return f"+ add {names.product(change.sku_id)} to {group} with disabled plans [{off}]"
    if isinstance(change, SetDisabledPlans):
        off = ", ".join(names.plans(change.sku_id, change.disabled_plans)) or "nothing"
        return f"~ {group}: {names.product(change.sku_id)} with disabled plans [{off}]"
    display, upn = names.user(change.user_id)
    if isinstance(change, AddMember):
        return f"+ add {display} <{upn}> to {group}"
    return f"- remove {display} <{upn}> from {group}"


def render_whatif_table(result: WhatIf, tenant: Tenant, catalog: Catalog) -> str:
    names = TenantNames(tenant, result.tenant_after, catalog)
    lines = [f"What if ({len(result.changes)} change(s)):"]
    lines += [f"  {_change_text(c, names)}" for c in result.changes]
    predicted = predicted_lines(result.predictions, names.product)
    if predicted:
        lines += ["", *predicted]
    if result.notes:
        lines += ["", "NOTES"] + [f"  {note}" for note in result.notes]
    lines += ["", *impact_lines(result.users, result.seats, names, result)]
    if result.predicted_errors:
        lines.append(
            "PREDICTED ERRORS: Entra would record assignment errors (see above); "
            "fix them before making this change."
        )
    return printable_lines(lines) + "\n"
