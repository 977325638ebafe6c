"""The evaluation as the readable table `license-guard evaluate --format table` prints.

The summary (counts by severity and code, top groups x code), then users with findings, users
without (with `show_healthy`, else their count), groups and products. A tenant with a new
licensing group prints hundreds of megabytes: the lines are produced one at a time and written
in chunks, and what many users share (a license line, a finding's fix and links) is formatted
once. The JSON document of the same evaluation is `render.evaluation`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import IO

from shared.catalog.products import Catalog
from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation, UserReport
from shared.core.findings import ERROR, INFO, SEVERITY_ORDER, WARNING, Finding
from shared.core.model import Sku, Tenant
from shared.core.pending_findings import PENDING_SEVERITY
from shared.core.wording import counted
from shared.render.findings import FindingLines
from shared.render.findings_summary import summary_lines
from shared.render.terminal_text import printable

_CHUNK_CHARS = 500_000
"""About half a megabyte per write: small writes stay in the CPU's cache (see
write_evaluation_json). Counted in characters, not items."""


def write_table(
    evaluation: Evaluation,
    tenant: Tenant,
    catalog: Catalog,
    out: IO[str],
    show_healthy: bool = False,
) -> None:
    """Write the table (see the module docstring), about half a megabyte at a time."""
    lines: list[str] = []
    size = 0
    for block in table_blocks(evaluation, tenant, catalog, show_healthy):
        lines += block
        size += sum(map(len, block))
        if size >= _CHUNK_CHARS:
            lines.append("")
            out.write("\n".join(lines))
            lines = []
            size = 0
    lines.append("")
    out.write("\n".join(lines))


def table_blocks(
    evaluation: Evaluation, tenant: Tenant, catalog: Catalog, show_healthy: bool = False
) -> Iterator[list[str]]:
    """The table's lines (without line ends) in blocks: a heading, a user, a group, ...

    Each line is `printable`: the tenant's text (names, messages) is escaped where it enters a
    line, once per cached piece; a pass over every line written cost a sixth of the time of a
    100k-user table."""
    org = tenant.organization
    counts = evaluation.finding_counts()
    by_severity: Counter[str] = Counter()
    for (severity, _code, _group), n in counts.items():
        by_severity[severity] += n
    licensed = [g for g in tenant.groups.values() if g.licenses]
    heading = [
        f"Tenant {org.display_name if org else '(organization not in snapshot)'}"
        + (f" ({org.country})" if org and org.country else "")
        + f": {counted(len(tenant.users), 'user')}, "
        f"{counted(len(licensed), 'licensed group')}, {counted(len(tenant.skus), 'product')}",
        f"Findings: {counted(by_severity[ERROR], 'error')}, "
        f"{counted(by_severity[WARNING], 'warning')}, {by_severity[INFO]} info",
        "",
        *summary_lines(counts, lambda g: group_label(tenant, g)),
    ]
    yield list(map(printable, heading))

    with_findings = [r for r in evaluation.users if r.has_findings]
    with_findings.sort(key=lambda r: (_most_severe(r), r.user.display_name.lower()))
    without = sorted(
        (r for r in evaluation.users if not r.has_findings),
        key=lambda r: r.user.display_name.lower(),
    )
    licenses = _LicenseLines(tenant, catalog)
    lines = FindingLines("      ")
    yield ["", f"USERS WITH FINDINGS ({len(with_findings)})"]
    for report in with_findings:
        user = report.user
        block = [printable(f"  {user.display_name} <{user.user_principal_name}>")]
        block += licenses.indented(report)
        # the findings by severity, the pending ones (all PENDING_SEVERITY) before the listed
        # ones of that severity, as a stable sort of `report.findings` puts them
        listed = sorted(report.listed, key=_severity)
        cut = bisect_left(listed, _PENDING_ORDER, key=_severity) if report.pending else 0
        for finding in listed[:cut]:
            block += lines.of(finding)
        if report.pending:
            block += lines.pending(user.id, user.display_name, report.pending)
        for finding in listed[cut:]:
            block += lines.of(finding)
        yield block
    yield ["", f"USERS WITHOUT FINDINGS ({len(without)})"]
    if without and not show_healthy:
        yield ["  (listed with --all)"]
        without = []
    for report in without:
        summary = "; ".join(licenses.of(report)) or "no licenses"
        user = report.user
        yield [printable(f"  {user.display_name} <{user.user_principal_name}>: {summary}")]

    yield ["", f"LICENSED GROUPS ({len(licensed)})"]
    reports = {g.group.id: g for g in evaluation.groups}
    for group in sorted(licensed, key=lambda g: g.name.lower()):
        products = ", ".join(
            f"{_product(sku, catalog)} {len(sku.plan_ids - lic.disabled_plans)}"
            f"/{len(sku.plans)} plans"
            if (sku := tenant.skus.get(lic.sku_id))
            else f"{lic.sku_id} (not in subscribedSkus: assigns nothing)"
            for lic in group.licenses
        )
        origin = "synced from on-premises" if group.synced_from_on_premises else "cloud"
        block = [
            printable(
                f"  {group.name}: {products}; {len(group.member_user_ids)} direct user members; "
                f"{origin}; {group.processing_state or 'processing state unknown'}"
            )
        ]
        for finding in reports[group.id].findings:
            block += lines.of(finding)
        yield block

    yield ["", f"PRODUCTS ({len(evaluation.skus)})"]
    for sku_report in evaluation.skus:
        sku = sku_report.sku
        block = [
            printable(
                f"  {_product(sku, catalog)} [{sku.part_number}]: should be held by "
                f"{sku_report.demand}, {counted(sku.prepaid.enabled, 'seat')} enabled, "
                f"{sku.consumed} consumed"
                + (f", SHORTFALL {sku_report.shortfall}" if sku_report.shortfall else "")
            )
        ]
        for finding in sku_report.findings:
            block += lines.of(finding)
        yield block


_PENDING_ORDER = SEVERITY_ORDER[PENDING_SEVERITY]


def _severity(finding: Finding) -> int:
    return SEVERITY_ORDER[finding.severity]


def _most_severe(report: UserReport) -> int:
    """The order of the report's most severe finding (`report.findings` is not built)."""
    order = min(map(_severity, report.listed), default=len(SEVERITY_ORDER))
    return min(order, _PENDING_ORDER) if report.pending else order


def group_label(tenant: Tenant, group_id: str) -> str:
    """A group's name in summaries (its id when the snapshot does not hold it)."""
    group = tenant.groups.get(group_id)
    return group.name if group else group_id


def _product(sku: Sku, catalog: Catalog) -> str:
    return catalog.product(sku.id, sku.part_number)


class _LicenseLines:
    """A user's license lines; the core shares its license tuples and licenses between users,
    so each is formatted once (keyed on identity, the value keeping the object alive)."""

    def __init__(self, tenant: Tenant, catalog: Catalog) -> None:
        self._tenant = tenant
        self._catalog = catalog
        self._texts: dict[int, tuple[EffectiveLicense, str]] = {}
        self._lists: dict[int, tuple[tuple[EffectiveLicense, ...], list[str], list[str]]] = {}

    def of(self, report: UserReport) -> list[str]:
        return self._cached(report)[1]

    def indented(self, report: UserReport) -> list[str]:
        """The lines under a user with findings."""
        return self._cached(report)[2]

    def _cached(
        self, report: UserReport
    ) -> tuple[tuple[EffectiveLicense, ...], list[str], list[str]]:
        cached = self._lists.get(id(report.licenses))
        if cached is None:
            texts = [self._text(lic) for lic in report.licenses]
            cached = (report.licenses, texts, [f"      {text}" for text in texts])
            self._lists[id(report.licenses)] = cached
        return cached

    def _text(self, lic: EffectiveLicense) -> str:
        cached = self._texts.get(id(lic))
        if cached is not None:
            return cached[1]
        tenant, catalog = self._tenant, self._catalog
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
        text = printable(text)
        self._texts[id(lic)] = (lic, text)
        return text
