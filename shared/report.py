"""Renderings of an evaluation: the JSON document, the assignment-path CSV and a readable table.

The JSON keys and the CSV header are contracts that scripts rely on (see README, "evaluate
output"); change them only with a version bump. CSV cells are neutralised against spreadsheet
formula injection, since display names come from the directory and anyone can set their own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from shared.catalog import Catalog
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation, UserReport
from shared.core.findings import ERROR, INFO, WARNING, Finding
from shared.core.model import AssignmentState, Sku, Tenant, normalize_error

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
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


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
    }
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
    out.write(b'{"users":[')
    for start in range(0, len(users), chunk):
        if start:
            out.write(b",")
        part = orjson.dumps([render.user(r) for r in users[start : start + chunk]])
        out.write(part[1:-1])
    out.write(b'],"groups":')
    out.write(orjson.dumps(render.groups(evaluation)))
    out.write(b',"skus":')
    out.write(orjson.dumps(render.skus(evaluation)))
    out.write(b"}\n")


# --------------------------------------------------------------------------- CSV


def safe_cell(value: object) -> str:
    """Neutralise a cell a spreadsheet would run as a formula by prefixing a quote."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


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
    ]


def write_csv(rows: Iterable[list[str]], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])


# --------------------------------------------------------------------------- table


def render_table(evaluation: Evaluation, tenant: Tenant, catalog: Catalog) -> str:
    """A readable summary: users with findings first, then the rest, groups and products."""
    lines: list[str] = []
    org = tenant.organization
    findings = evaluation.findings()
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in _SEVERITY_ORDER}
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

    with_findings = [r for r in evaluation.users if r.findings]
    with_findings.sort(
        key=lambda r: (
            min(_SEVERITY_ORDER[f.severity] for f in r.findings),
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
        for finding in sorted(report.findings, key=lambda f: _SEVERITY_ORDER[f.severity]):
            lines += _finding_lines(finding, indent="      ")
    lines += ["", f"USERS WITHOUT FINDINGS ({len(without)})"]
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
    return [
        f"{indent}{finding.severity.upper():<7} {finding.code}: {finding.message}",
        f"{indent}        fix: {finding.remedy}",
    ]
