"""The builder that fills the health report a page of users at a time (a snapshot is one page;
a live scan and the nightly run are many).

Memory stays bounded whatever the tenant's size: counts are counters, and each table keeps at
most `rows_per_code` rows per finding code (the first by severity, then name).

Inputs are the evaluation JSON's shapes (`shared.render.evaluation.evaluation_json`: user
documents with their findings), the core's SKUs and groups, and the nightly summaries
(`NightlySummary` JSON); the output is `render.health_model.HealthReport`.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.core.findings import (
    COUNT_VIOLATION,
    ERROR,
    INFO,
    PENDING_GROUP_ASSIGNMENT,
    REDUNDANT_DIRECT_ASSIGNMENT,
    REPORTED_CODES,
    SEVERITY_ORDER,
    STALE_GROUP_ASSIGNMENT,
)
from shared.core.model import Group, Sku
from shared.render.health_model import (
    HEALTH_KEYS,
    MAX_GROUPS,
    ROWS_PER_CODE,
    CodeCount,
    Count,
    DriftRow,
    FindingRow,
    GroupRow,
    HealthReport,
    Migration,
    ProductRow,
    Trends,
)


class HealthBuilder:
    """Feed user documents page by page (`add_users`), subject findings (`add_findings`), then
    `build` once with the context only the caller knows."""

    def __init__(
        self,
        skus: Iterable[Sku],
        groups: Iterable[Group],
        product_name: Callable[[str, str], str],
        rows_per_code: int = ROWS_PER_CODE,
    ) -> None:
        self.skus = list(skus)
        self.groups = list(groups)
        self.group_names = {g.id: g.name for g in self.groups}
        self.part = {s.id: s.part_number for s in self.skus}
        self.product_name = product_name
        self.rows_per_code = rows_per_code
        self.users = 0
        self.findings_by_code: Counter[str] = Counter()
        self.users_by_code: Counter[str] = Counter()
        self.worst: dict[str, str] = {}
        self.health: Counter[str] = Counter()
        self.waiting: Counter[str] = Counter()
        self.redundant: Counter[str] = Counter()
        self.group_errors: defaultdict[str, set[str]] = defaultdict(set)
        # users named by findings about groups and products, per code: one user can be in
        # several such findings (a nested group inside two licensed groups) and counts once
        self.subject_users: defaultdict[str, set[str]] = defaultdict(set)
        self._rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._seq = 0

    def product(self, sku_id: str | None) -> str:
        if not sku_id:
            return ""
        return self.product_name(sku_id, self.part.get(sku_id, sku_id))

    def _keep(self, row: FindingRow) -> None:
        """Keep the first `rows_per_code` rows by (severity, name): a bounded max-heap."""
        rank = (-SEVERITY_ORDER.get(row.severity, 3), _neg(row.name.lower()), -self._seq)
        self._seq += 1
        heap = self._rows[row.code]
        if len(heap) < self.rows_per_code:
            heapq.heappush(heap, (rank, row))
        elif rank > heap[0][0]:
            heapq.heapreplace(heap, (rank, row))

    def _count(self, finding: Mapping[str, Any]) -> None:
        code, severity = str(finding["code"]), str(finding["severity"])
        self.findings_by_code[code] += 1
        if SEVERITY_ORDER.get(severity, 3) < SEVERITY_ORDER.get(self.worst.get(code, INFO), 3):
            self.worst[code] = severity
        self.worst.setdefault(code, severity)

    def add_users(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.users += 1
            findings = doc.get("findings") or ()
            if not findings:
                continue
            user_id = str(doc["id"])
            name = str(doc.get("displayName") or "")
            upn = str(doc.get("userPrincipalName") or "")
            codes: set[str] = set()
            waiting: set[str] = set()  # one CountViolation per group path, one user waiting
            for f in findings:
                self._count(f)
                code, sku_id, group_id = str(f["code"]), f.get("skuId"), f.get("groupId")
                codes.add(code)
                if code == COUNT_VIOLATION and sku_id:
                    waiting.add(sku_id)
                if code == REDUNDANT_DIRECT_ASSIGNMENT and sku_id:
                    self.redundant[sku_id] += 1
                if code in REPORTED_CODES and group_id:
                    self.group_errors[group_id].add(user_id)
                self._keep(
                    FindingRow(
                        code,
                        str(f["severity"]),
                        "user",
                        user_id,
                        name or upn,
                        upn,
                        self.product(sku_id),
                        str(group_id or ""),
                        self.group_names.get(group_id or "", str(group_id or "")),
                        str(f.get("message") or ""),
                        str(f.get("remedy") or ""),
                    )
                )
            self.users_by_code.update(codes)
            self.waiting.update(waiting)
            if any(f["severity"] == ERROR for f in findings):
                self.health["error"] += 1
            if STALE_GROUP_ASSIGNMENT in codes:
                self.health["stale"] += 1
            if PENDING_GROUP_ASSIGNMENT in codes:
                self.health["pending"] += 1

    def add_findings(self, findings: Iterable[Mapping[str, Any]]) -> None:
        """Findings about a group (`group:<id>`) or a product (`sku:<id>`)."""
        for f in findings:
            self._count(f)
            code, sku_id, group_id = str(f["code"]), f.get("skuId"), f.get("groupId")
            self.subject_users[code].update(str(u) for u in f.get("userIds") or ())
            subject = str(f.get("key") or "").split("|", 1)[0]
            if subject.startswith("group:"):
                kind, subject_id = "group", subject[6:]
                name = self.group_names.get(subject_id, subject_id)
            else:
                kind, subject_id, name = "product", str(sku_id or ""), self.product(sku_id)
            self._keep(
                FindingRow(
                    code,
                    str(f["severity"]),
                    kind,
                    subject_id,
                    name,
                    "",
                    self.product(sku_id),
                    str(group_id or ""),
                    self.group_names.get(group_id or "", str(group_id or "")),
                    str(f.get("message") or ""),
                    str(f.get("remedy") or ""),
                )
            )

    def build(
        self,
        *,
        tenant: str,
        generated_at: str,
        source: str,
        demand: Mapping[str, int],
        members: Mapping[str, int],
        previous: Mapping[str, Any] | None = None,
        drift: Sequence[Mapping[str, Any]] = (),
        drift_date: str | None = None,
        migration: Migration | None = None,
        trends: Trends | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> HealthReport:
        before = (previous or {}).get("findings_by_code")
        before_health = (previous or {}).get("health") or {}
        codes = sorted(
            (
                CodeCount(
                    code,
                    self.worst.get(code, INFO),
                    n,
                    self.users_by_code[code] + len(self.subject_users[code]),
                    None if before is None else int(before.get(code, 0)),
                )
                for code, n in self.findings_by_code.items()
            ),
            key=lambda c: (SEVERITY_ORDER.get(c.severity, 3), -c.findings, c.code),
        )
        # Codes that were there last night and are gone now: shown with 0 and their change,
        # and no severity (the stored summary has counts only, not how severe they were).
        for code, n in sorted((before or {}).items()):
            if code not in self.findings_by_code and n:
                codes.append(CodeCount(code, "", 0, 0, int(n)))
        labels = {"error": "users in error", "stale": "stale", "pending": "pending"}
        health = tuple(
            Count(
                labels[k],
                self.health[k],
                int(before_health[k]) if k in before_health else None,
            )
            for k in HEALTH_KEYS
        )
        rows = sorted(
            (row for heap in self._rows.values() for _, row in heap),
            key=lambda r: (SEVERITY_ORDER.get(r.severity, 3), r.code, r.name.lower()),
        )
        price_of = _prices(prices or {}, self.skus)
        rows_of_products = (
            ProductRow(
                s.id,
                s.part_number,
                self.product(s.id),
                int(demand.get(s.id, 0)),
                s.prepaid.enabled,
                s.prepaid.warning,
                s.prepaid.suspended,
                s.prepaid.locked_out,
                s.consumed,
                self.waiting[s.id],
                self.redundant[s.id],
                price_of.get(s.id),
            )
            for s in self.skus
        )
        # the products that need the admin first (users short of a seat, seats lapsing), then
        # the others, each by name
        products = tuple(
            sorted(
                rows_of_products,
                key=lambda p: (not (p.shortfall or p.waiting or p.at_risk), p.product.lower()),
            )
        )
        drift_rows = [
            DriftRow(
                str(d.get("kind") or ""),
                str(d.get("subject") or ""),
                str(d.get("detail") or ""),
                d.get("actor"),
            )
            for d in drift
        ]
        licensed = [g for g in self.groups if g.licenses]
        # A drift row names its group by display name: pinned on the group's row only when
        # one licensed group has that name (else it is listed under the other changes).
        named = Counter(g.name for g in licensed)
        by_group: defaultdict[str, list[DriftRow]] = defaultdict(list)
        for row in drift_rows:
            if named[row.subject] == 1:
                by_group[row.subject].append(row)
        ordered = sorted(
            licensed, key=lambda g: (-len(self.group_errors.get(g.id, ())), g.name.lower())
        )
        groups = tuple(self._group_row(g, members, by_group) for g in ordered[:MAX_GROUPS])
        listed = {g.name for g in groups if named[g.name] == 1}
        return HealthReport(
            tenant=tenant,
            generated_at=generated_at,
            source=source,
            users_scanned=self.users,
            compared_with=(previous or {}).get("date"),
            health=health,
            codes=tuple(codes),
            findings=tuple(rows),
            findings_total=sum(self.findings_by_code.values()),
            products=products,
            groups=groups,
            groups_total=len(licensed),
            drift_date=drift_date,
            drift_other=tuple(r for r in drift_rows if r.subject not in listed),
            migration=migration or Migration(),
            trends=trends or Trends(),
            rows_per_code=self.rows_per_code,
            priced=bool(price_of),
        )

    def _group_row(
        self, group: Group, members: Mapping[str, int], drift: Mapping[str, list[DriftRow]]
    ) -> GroupRow:
        skus = {s.id: s for s in self.skus}
        disabled = []
        for lic in group.licenses:
            sku = skus.get(lic.sku_id)
            if lic.disabled_plans and sku is not None:
                names = ", ".join(sorted(sku.plan_name(p) for p in lic.disabled_plans))
                disabled.append(f"{sku.part_number}: {names}")
        return GroupRow(
            group.id,
            group.name,
            tuple(self.product(lic.sku_id) for lic in group.licenses),
            tuple(disabled),
            int(members.get(group.id, len(group.member_user_ids))),
            len(self.group_errors.get(group.id, ())),
            group.processing_state or "unknown",
            bool(group.membership_rule),
            group.synced_from_on_premises,
            tuple(drift.get(group.name, ())),
        )


def _neg(text: str) -> tuple[int, ...]:
    """A key that sorts text in reverse, for the max-heap of rows to keep."""
    return (*(-ord(c) for c in text), 1)


def _prices(prices: Mapping[str, float], skus: Sequence[Sku]) -> dict[str, float]:
    """SKU_PRICES names a product by skuPartNumber or skuId (any case)."""
    wanted = {k.lower(): v for k, v in prices.items()}
    out = {}
    for sku in skus:
        price = wanted.get(sku.part_number.lower(), wanted.get(sku.id.lower()))
        if price is not None:
            out[sku.id] = price
    return out
