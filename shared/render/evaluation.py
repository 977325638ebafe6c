"""The evaluation report: the JSON document (whole or streamed) and the readable table.

The JSON keys are a contract that scripts rely on (see README, "evaluate output"); change them
only with a version bump. The assignment-path CSV of the same evaluation is `render.paths`.
"""

from __future__ import annotations

from typing import IO, Any

import orjson

from shared.catalog.products import Catalog
from shared.core.alerting import SEVERITY_ORDER
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation, UserReport
from shared.core.findings import ERROR, INFO, WARNING
from shared.core.model import Sku, Tenant
from shared.render.findings import finding_json, finding_lines
from shared.render.findings_summary import summary_json, summary_lines
from shared.render.tenant_names import PlanNames


class _JsonRenderer:
    """Builds the JSON document's parts; license entries are shared by users holding the same."""

    def __init__(self, tenant: Tenant) -> None:
        self._plans = PlanNames(tenant)
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
            lines += finding_lines(finding, indent="      ")
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
            lines += finding_lines(finding, indent="      ")

    lines += ["", f"PRODUCTS ({len(evaluation.skus)})"]
    for sku_report in evaluation.skus:
        sku = sku_report.sku
        lines.append(
            f"  {_product(sku, catalog)} [{sku.part_number}]: should be held by "
            f"{sku_report.demand}, {sku.prepaid.enabled} seats enabled, {sku.consumed} consumed"
            + (f", SHORTFALL {sku_report.shortfall}" if sku_report.shortfall else "")
        )
        for finding in sku_report.findings:
            lines += finding_lines(finding, indent="      ")
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
