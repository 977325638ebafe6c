"""Renderings of an evaluation: the JSON document, the assignment-path CSV and a readable table.

The JSON keys and the CSV header are contracts that scripts rely on (see README, "evaluate
output"); change them only with a version bump. CSV cells are neutralised against spreadsheet
formula injection, since display names come from the directory and anyone can set their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import orjson

from shared.catalog.products import Catalog
from shared.core.alerting import SEVERITY_ORDER
from shared.core.dataloss import LABELS as DATA_LOSS_LABELS
from shared.core.dataloss import CapabilityLoss
from shared.core.drift import (
    ADDED,
    CHANGED,
    GAINED,
    LOST,
    REMOVED,
    Drift,
    GroupDrift,
    SeatDelta,
    SkuDrift,
    UserDelta,
)
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation, UserReport
from shared.core.findings import ERROR, INFO, WARNING, Finding
from shared.core.links import finding_url, group_license_url, user_license_url
from shared.core.migration import MigrationPlan
from shared.core.model import AssignmentState, PrepaidUnits, Sku, Tenant, normalize_error
from shared.core.whatif import (
    AddMember,
    AddSku,
    Change,
    DeleteGroup,
    RemoveSku,
    SetDisabledPlans,
    WhatIf,
)
from shared.render.csvsafe import csv_writer
from shared.render.findings_summary import summary_json, summary_lines
from shared.render.predict import (
    predicted_json,
    predicted_lines,
    seat_need_json,
    user_predicted_lines,
)

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


class _PlanNames:
    """servicePlanName lists in the SKU's own plan order, built once per distinct plan set."""

    def __init__(self, tenant: Tenant) -> None:
        self._skus = tenant.skus
        self._cache: dict[tuple[str, frozenset[str]], list[str]] = {}

    def names(self, sku_id: str, plan_ids: frozenset[str]) -> list[str]:
        key = (sku_id, plan_ids)
        names = self._cache.get(key)
        if names is None:
            sku = self._skus[sku_id]
            names = [p.name for p in sku.plans if p.id in plan_ids]
            self._cache[key] = names
        return names


# --------------------------------------------------------------------------- JSON


def finding_json(finding: Finding) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key": finding.key,
        "code": finding.code,
        "severity": finding.severity,
        "skuId": finding.sku_id,
        "groupId": finding.group_id,
        "message": finding.message,
        "remedy": finding.remedy,
        "link": finding_url(finding.subject, finding.group_id),
    }
    if finding.group_id and finding.user_id:
        doc["groupLink"] = group_license_url(finding.group_id)
    if finding.user_ids:
        doc["userIds"] = list(finding.user_ids)
    return doc


class _JsonRenderer:
    """Builds the JSON document's parts; license entries are shared by users holding the same."""

    def __init__(self, tenant: Tenant) -> None:
        self._plans = _PlanNames(tenant)
        self._groups = tenant.groups
        self._part = {s.id: s.part_number for s in tenant.skus.values()}
        self._paths: dict[str | None, dict[str, Any]] = {None: {"type": "direct"}}
        self._licenses: dict[int, tuple[EffectiveLicense, dict[str, Any]]] = {}
        self._lists: dict[int, tuple[tuple[EffectiveLicense, ...], list[dict[str, Any]]]] = {}

    def _path(self, group_id: str | None) -> dict[str, Any]:
        doc = self._paths.get(group_id)
        if doc is None:
            group = self._groups.get(group_id or "")
            doc = {"type": "group", "groupId": group_id, "groupName": group and group.name}
            self._paths[group_id] = doc
        return doc

    def _license(self, lic: EffectiveLicense) -> dict[str, Any]:
        # Keyed on identity (the core shares EffectiveLicense objects); the value keeps the
        # object alive so its id cannot be reused while the cache lives.
        cached = self._licenses.get(id(lic))
        if cached is not None:
            return cached[1]
        doc = {
            "skuId": lic.sku_id,
            "skuPartNumber": self._part[lic.sku_id],
            "paths": [self._path(p.group_id) for p in lic.paths],
            "enabledPlans": self._plans.names(lic.sku_id, lic.enabled_plans),
            "disabledPlans": self._plans.names(lic.sku_id, lic.disabled_plans),
        }
        self._licenses[id(lic)] = (lic, doc)
        return doc

    def user(self, report: UserReport) -> dict[str, Any]:
        user = report.user
        return {
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "licenses": [self._license(lic) for lic in report.licenses],
            "findings": [finding_json(f) for f in report.findings],
        }

    def user_streamed(self, report: UserReport) -> dict[str, Any]:
        """`user`, with one licenses list for all users who share the core's licenses tuple
        (most users fall into a few hundred combinations)."""
        user = report.user
        cached = self._lists.get(id(report.licenses))
        if cached is None:
            licenses = [self._license(lic) for lic in report.licenses]
            self._lists[id(report.licenses)] = (report.licenses, licenses)
        else:
            licenses = cached[1]
        return {
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "licenses": licenses,
            "findings": [finding_json(f) for f in report.findings],
        }

    @staticmethod
    def groups(evaluation: Evaluation) -> list[dict[str, Any]]:
        return [
            {
                "id": g.group.id,
                "displayName": g.group.name,
                "findings": [finding_json(f) for f in g.findings],
            }
            for g in evaluation.groups
        ]

    @staticmethod
    def skus(evaluation: Evaluation) -> list[dict[str, Any]]:
        return [
            {
                "skuId": s.sku.id,
                "skuPartNumber": s.sku.part_number,
                "demand": s.demand,
                "prepaidEnabled": s.sku.prepaid.enabled,
                "consumed": s.sku.consumed,
                "shortfall": s.shortfall,
                "findings": [finding_json(f) for f in s.findings],
            }
            for s in evaluation.skus
        ]


def evaluation_json(evaluation: Evaluation, tenant: Tenant) -> dict[str, Any]:
    """The whole evaluation as one JSON-ready document (see README for the schema)."""
    render = _JsonRenderer(tenant)
    return {
        "summary": summary_json(evaluation.findings(), lambda g: _group_label(tenant, g)),
        "users": [render.user(r) for r in evaluation.users],
        "groups": render.groups(evaluation),
        "skus": render.skus(evaluation),
    }


def write_evaluation_json(
    evaluation: Evaluation, tenant: Tenant, out: IO[bytes], chunk: int = 2000
) -> None:
    """Stream the same document as `evaluation_json`, a chunk of users at a time.

    A 100k-user tenant renders to hundreds of megabytes; streaming keeps that out of memory.
    """
    render = _JsonRenderer(tenant)
    users = evaluation.users
    summary = summary_json(evaluation.findings(), lambda g: _group_label(tenant, g))
    out.write(b'{"summary":' + orjson.dumps(summary) + b',"users":[')
    for start in range(0, len(users), chunk):
        if start:
            out.write(b",")
        part = orjson.dumps([render.user_streamed(r) for r in users[start : start + chunk]])
        out.write(memoryview(part)[1:-1])
    out.write(b'],"groups":')
    out.write(orjson.dumps(render.groups(evaluation)))
    out.write(b',"skus":')
    out.write(orjson.dumps(render.skus(evaluation)))
    out.write(b"}\n")


# --------------------------------------------------------------------------- CSV


def path_rows(evaluation: Evaluation, tenant: Tenant, catalog: Catalog) -> Iterator[list[str]]:
    """One row per user × SKU × path: what should be, with Graph's state for that path.

    Paths Graph still reports but that no longer apply (stale) are listed too, with the plans
    Graph shows, so the export is the full picture of who holds what and why.
    """
    plans = _PlanNames(tenant)
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
    writer = csv_writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)


# --------------------------------------------------------------------------- table


def render_table(
    evaluation: Evaluation, tenant: Tenant, catalog: Catalog, show_healthy: bool = False
) -> str:
    """The summary (counts by severity and code, top groups x code), then users with findings,
    users without (with `show_healthy`, else their count), groups and products."""
    lines: list[str] = []
    org = tenant.organization
    findings = evaluation.findings()
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in SEVERITY_ORDER}
    licensed = [g for g in tenant.groups.values() if g.licenses]
    lines.append(
        f"Tenant {org.display_name if org else '(organization not in snapshot)'}"
        + (f" ({org.country})" if org and org.country else "")
        + f": {len(tenant.users)} users, {len(licensed)} licensed groups, "
        f"{len(tenant.skus)} products"
    )
    lines.append(
        f"Findings: {counts[ERROR]} errors, {counts[WARNING]} warnings, {counts[INFO]} info"
    )
    lines += ["", *summary_lines(findings, lambda g: _group_label(tenant, g))]

    with_findings = [r for r in evaluation.users if r.findings]
    with_findings.sort(
        key=lambda r: (
            min(SEVERITY_ORDER[f.severity] for f in r.findings),
            r.user.display_name.lower(),
        )
    )
    without = sorted(
        (r for r in evaluation.users if not r.findings), key=lambda r: r.user.display_name.lower()
    )
    lines += ["", f"USERS WITH FINDINGS ({len(with_findings)})"]
    for report in with_findings:
        lines.append(f"  {report.user.display_name} <{report.user.user_principal_name}>")
        lines += [f"      {text}" for text in _license_lines(report, tenant, catalog)]
        for finding in sorted(report.findings, key=lambda f: SEVERITY_ORDER[f.severity]):
            lines += _finding_lines(finding, indent="      ")
    lines += ["", f"USERS WITHOUT FINDINGS ({len(without)})"]
    if without and not show_healthy:
        lines.append("  (listed with --all)")
        without = []
    for report in without:
        summary = "; ".join(_license_lines(report, tenant, catalog)) or "no licenses"
        lines.append(f"  {report.user.display_name} <{report.user.user_principal_name}>: {summary}")

    lines += ["", f"LICENSED GROUPS ({len(licensed)})"]
    reports = {g.group.id: g for g in evaluation.groups}
    for group in sorted(licensed, key=lambda g: g.name.lower()):
        products = ", ".join(
            f"{_product(tenant.skus[lic.sku_id], catalog)} "
            f"{len(tenant.skus[lic.sku_id].plan_ids - lic.disabled_plans)}"
            f"/{len(tenant.skus[lic.sku_id].plans)} plans"
            for lic in group.licenses
        )
        origin = "synced from on-premises" if group.synced_from_on_premises else "cloud"
        lines.append(
            f"  {group.name}: {products}; {len(group.member_user_ids)} direct user members; "
            f"{origin}; {group.processing_state or 'processing state unknown'}"
        )
        for finding in reports[group.id].findings:
            lines += _finding_lines(finding, indent="      ")

    lines += ["", f"PRODUCTS ({len(evaluation.skus)})"]
    for sku_report in evaluation.skus:
        sku = sku_report.sku
        lines.append(
            f"  {_product(sku, catalog)} [{sku.part_number}]: should be held by "
            f"{sku_report.demand}, {sku.prepaid.enabled} seats enabled, {sku.consumed} consumed"
            + (f", SHORTFALL {sku_report.shortfall}" if sku_report.shortfall else "")
        )
        for finding in sku_report.findings:
            lines += _finding_lines(finding, indent="      ")
    return "\n".join(lines) + "\n"


def _group_label(tenant: Tenant, group_id: str) -> str:
    group = tenant.groups.get(group_id)
    return group.name if group else group_id


def _product(sku: Sku, catalog: Catalog) -> str:
    return catalog.product(sku.id, sku.part_number)


def _license_lines(report: UserReport, tenant: Tenant, catalog: Catalog) -> list[str]:
    lines = []
    for lic in report.licenses:
        sku = tenant.skus[lic.sku_id]
        via = ", ".join(
            "direct" if p.group_id is None else tenant.groups[p.group_id].name for p in lic.paths
        )
        text = (
            f"{_product(sku, catalog)}: {len(lic.enabled_plans)}/{len(sku.plans)} plans via {via}"
        )
        if lic.disabled_plans and len(lic.disabled_plans) <= 6:
            off = sorted(catalog.plan(p, sku.plan_name(p)) for p in lic.disabled_plans)
            text += f" (off: {', '.join(off)})"
        lines.append(text)
    return lines


def _finding_lines(finding: Finding, indent: str) -> list[str]:
    lines = [
        f"{indent}{finding.severity.upper():<7} {finding.code}: {finding.message}",
        f"{indent}        fix: {finding.remedy}",
        f"{indent}        at:  {finding_url(finding.subject, finding.group_id)}",
    ]
    if finding.group_id and finding.user_id:
        lines.append(f"{indent}        group: {group_license_url(finding.group_id)}")
    return lines


# --------------------------------------------------------------------------- what-if and diff


class _Describe:
    """Names across a tenant before and after a change (after first, then before).

    With a catalog, products and plans get Microsoft's friendly names (the table); without,
    part numbers and servicePlanNames (JSON, which scripts read).
    """

    def __init__(self, before: Tenant, after: Tenant, catalog: Catalog | None = None) -> None:
        self.before, self.after, self._catalog = before, after, catalog

    def _sku(self, sku_id: str) -> Sku | None:
        return self.after.skus.get(sku_id) or self.before.skus.get(sku_id)

    def part(self, sku_id: str) -> str:
        sku = self._sku(sku_id)
        return sku.part_number if sku else sku_id

    def product(self, sku_id: str) -> str:
        part = self.part(sku_id)
        return self._catalog.product(sku_id, part) if self._catalog else part

    def total_plans(self, sku_id: str) -> int:
        sku = self._sku(sku_id)
        return len(sku.plans) if sku else 0

    def plan_code(self, sku_id: str, plan_id: str) -> str:
        for tenant in (self.after, self.before):
            sku = tenant.skus.get(sku_id)
            if sku is not None and plan_id in sku.plan_ids:
                return sku.plan_name(plan_id)
        return plan_id

    def plans(self, sku_id: str, plan_ids: Iterable[str]) -> list[str]:
        """Plan names: in the SKU's order for JSON, sorted friendly names for the table."""
        ids = set(plan_ids)
        if self._catalog is None:
            order = [p.id for t in (self.after, self.before) for p in self._plans_of(t, sku_id)]
            rank = {plan_id: n for n, plan_id in reversed(list(enumerate(order)))}
            ordered = sorted(ids, key=lambda p: (rank.get(p, len(rank)), p))
            return [self.plan_code(sku_id, p) for p in ordered]
        return sorted(self._catalog.plan(p, self.plan_code(sku_id, p)) for p in ids)

    @staticmethod
    def _plans_of(tenant: Tenant, sku_id: str) -> tuple[Any, ...]:
        sku = tenant.skus.get(sku_id)
        return sku.plans if sku else ()

    def group(self, group_id: str | None) -> str:
        if group_id is None:
            return "direct"
        group = self.after.groups.get(group_id) or self.before.groups.get(group_id)
        return group.name if group else group_id

    def user(self, user_id: str) -> tuple[str, str]:
        user = self.after.users.get(user_id) or self.before.users.get(user_id)
        return (user.display_name, user.user_principal_name) if user else (user_id, "")

    def path_json(self, group_id: str | None) -> dict[str, Any]:
        if group_id is None:
            return {"type": "direct"}
        return {"type": "group", "groupId": group_id, "groupName": self.group(group_id)}


def _user_delta_json(delta: UserDelta, names: _Describe) -> dict[str, Any]:
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


def _loss_json(loss: CapabilityLoss, names: _Describe) -> dict[str, Any]:
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


def _seat_json(seat: SeatDelta, names: _Describe) -> dict[str, Any]:
    return {
        "skuId": seat.sku_id,
        "skuPartNumber": names.part(seat.sku_id),
        "demandBefore": seat.demand_before,
        "demandAfter": seat.demand_after,
        "prepaidEnabled": seat.prepaid_enabled,
        "shortfall": seat.shortfall,
    }


def _change_json(change: Change, names: _Describe) -> dict[str, Any]:
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
    names = _Describe(tenant, result.tenant_after)
    users = []
    for delta in _sorted_deltas(result.users, names):
        doc = _user_delta_json(delta, names)
        doc["dataPlansLost"] = _data_plans_lost(delta, names, result.data_plans)
        doc["predictedErrors"] = [
            predicted_json(e) for e in result.predictions.for_user(delta.user_id)
        ]
        users.append(doc)
    return {
        "changes": [_change_json(c, names) for c in result.changes],
        "notes": list(result.notes),
        "users": users,
        "skus": [_seat_json(s, names) for s in result.seats],
        "seatsNeeded": [seat_need_json(n, names.part(n.sku_id)) for n in result.predictions.seats],
        "predictedErrors": sum(1 for e in result.predictions.errors if e.severity == "error"),
        "dataLossRisk": result.data_loss,
    }


def _data_plans_lost(delta: UserDelta, names: _Describe, data_plans: frozenset[str]) -> list[str]:
    """Data-bearing plans (mailbox, OneDrive) the user would no longer have from a product."""
    return sorted(
        {
            names.plan_code(s.sku_id, p)
            for s in delta.skus
            for p in s.plans_disabled
            if p.lower() in data_plans
        }
    )


def _sorted_deltas(deltas: Iterable[UserDelta], names: _Describe) -> list[UserDelta]:
    """Users at risk of data loss first, then by display name."""
    return sorted(deltas, key=lambda d: (not d.losses, names.user(d.user_id)[0].lower()))


def _change_text(change: Change, names: _Describe) -> str:
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


def _delta_lines(delta: UserDelta, names: _Describe, result: WhatIf | None = None) -> list[str]:
    display, upn = names.user(delta.user_id)
    lines = [f"  {display} <{upn}>"]
    data_lost = _data_plans_lost(delta, names, result.data_plans) if result else []
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
        lines += _finding_lines(delta.finding, indent="      ")
    if result is not None:
        lines += user_predicted_lines(result.predictions.for_user(delta.user_id), "      ")
    return lines


def _seat_lines(seats: Sequence[SeatDelta], names: _Describe) -> list[str]:
    lines = [f"SEATS ({len(seats)} product(s) with changed demand or short of seats)"]
    for seat in seats:
        lines.append(
            f"  {names.product(seat.sku_id)} [{names.part(seat.sku_id)}]: should be held by "
            f"{seat.demand_before} -> {seat.demand_after} ({seat.change:+d}), "
            f"{seat.prepaid_enabled} seats enabled"
            + (f", SHORTFALL {seat.shortfall}" if seat.shortfall else "")
        )
    return lines


def _users_section(
    deltas: Sequence[UserDelta], names: _Describe, result: WhatIf | None = None
) -> list[str]:
    at_risk = sum(1 for d in deltas if d.losses)
    lines = [f"AFFECTED USERS ({len(deltas)}, {at_risk} at risk of data loss)"]
    for delta in _sorted_deltas(deltas, names):
        lines += _delta_lines(delta, names, result)
    return lines


def _verdict(deltas: Sequence[UserDelta]) -> str:
    at_risk = [d for d in deltas if d.losses]
    if not at_risk:
        return "No data-loss risk: no affected user loses a mailbox or OneDrive they had."
    return (
        f"DATA-LOSS RISK for {len(at_risk)} user(s): see DataLossRisk above before making "
        "this change."
    )


def render_whatif_table(result: WhatIf, tenant: Tenant, catalog: Catalog) -> str:
    names = _Describe(tenant, result.tenant_after, catalog)
    lines = [f"What if ({len(result.changes)} change(s)):"]
    lines += [f"  {_change_text(c, names)}" for c in result.changes]
    predicted = predicted_lines(result.predictions, names.product)
    if predicted:
        lines += ["", *predicted]
    if result.notes:
        lines += ["", "NOTES"] + [f"  {note}" for note in result.notes]
    lines += ["", *_users_section(result.users, names, result)]
    lines += ["", *_seat_lines(result.seats, names)]
    lines += ["", _verdict(result.users)]
    if result.predicted_errors:
        lines.append(
            "PREDICTED ERRORS: Entra would record assignment errors (see above); "
            "fix them before making this change."
        )
    return "\n".join(lines) + "\n"


def _group_drift_json(drift: GroupDrift, names: _Describe) -> dict[str, Any]:
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
    if units is None:
        return None
    return {
        "enabled": units.enabled,
        "warning": units.warning,
        "suspended": units.suspended,
        "lockedOut": units.locked_out,
    }


def _sku_drift_json(drift: SkuDrift, names: _Describe) -> dict[str, Any]:
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
    names = _Describe(old, new)
    return {
        "groups": [_group_drift_json(g, names) for g in drift.groups],
        "skus": [_sku_drift_json(s, names) for s in drift.skus],
        "users": [_user_delta_json(u, names) for u in _sorted_deltas(drift.users, names)],
        "seats": [_seat_json(s, names) for s in drift.seats],
        "dataLossRisk": bool(drift.losses),
    }


_GROUP_STATUS = {
    GAINED: "now assigns licenses",
    LOST: "no longer assigns licenses",
    ADDED: "new licensed group",
    REMOVED: "deleted",
    CHANGED: "changed",
}


def _group_drift_lines(drift: GroupDrift, names: _Describe) -> list[str]:
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


def _sku_drift_lines(drift: SkuDrift, names: _Describe) -> list[str]:
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
    names = _Describe(old, new, catalog)
    lines = [f"LICENSED GROUPS CHANGED ({len(drift.groups)})"]
    for group in drift.groups:
        lines += _group_drift_lines(group, names)
    lines += ["", f"PRODUCTS CHANGED ({len(drift.skus)})"]
    for sku in drift.skus:
        lines += _sku_drift_lines(sku, names)
    lines += ["", *_users_section(drift.users, names)]
    lines += ["", *_seat_lines(drift.seats, names)]
    lines += ["", _verdict(drift.users)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- migration plan

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


def migration_rows(plan: MigrationPlan, tenant: Tenant, catalog: Catalog) -> Iterator[list[str]]:
    """One row per direct assignment in the plan (cells not yet neutralised; see write_rows)."""
    names = _Describe(tenant, tenant, catalog)

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
            unhealthy = ", ".join(names.group(g) for g in c.unhealthy_group_ids)
            yield [
                "not-yet",
                *head(c.user_id, c.sku_id),
                groups,
                "",
                "",
                f"fix the group path first ({unhealthy} is not active without errors)",
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
                f"add to {existing}" if existing else f"create {s.suggested_name} and add",
            ]


def write_rows(header: Sequence[str], rows: Iterable[list[str]], out: IO[str]) -> None:
    """A CSV with `header`, every cell neutralised against formula injection."""
    writer = csv_writer(out)
    writer.writerow(header)
    writer.writerows(rows)


def migration_json(plan: MigrationPlan, tenant: Tenant) -> dict[str, Any]:
    names = _Describe(tenant, tenant)

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
    names = _Describe(tenant, tenant, catalog)
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
    lines += ["", f"NOT YET ({len(plan.not_yet)}): covered, but a group path is not active"]
    for c in sorted(plan.not_yet, key=lambda c: by_name(c.user_id)):
        bad = ", ".join(names.group(g) for g in c.unhealthy_group_ids)
        lines.append(
            f"  {who(c.user_id)}: {names.product(c.sku_id)}; fix {bad} first (not active "
            "without errors)"
        )
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
        f"HELD ONLY DIRECTLY ({len(plan.direct_only)} product/plan sets, {users} users): "
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
            lines.append(f"      existing group with exactly these plans: {existing}")
        else:
            lines.append(
                f"      suggested group: {s.suggested_name} (assign {names.part(s.sku_id)}, "
                f"disable: {off})"
            )
        lines.append("      users: " + ", ".join(who(u) for u in sorted(s.user_ids, key=by_name)))
    return "\n".join(lines) + "\n"
