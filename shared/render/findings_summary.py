"""The summary every findings report starts with: counts by severity and code, then the groups
with the most findings of one code. Shared by `evaluate` and `reconcile --dry-run`, table and
JSON, so an admin of a large tenant reads the shape of the problem before its 8,000 lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from shared.core.findings import SEVERITY_ORDER, Finding

TOP_GROUPS = 10


def _counts(
    findings: Iterable[Finding],
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str | None, str]]]:
    # counted in C (map over attrgetter): a tenant with a new licensing group has 400k findings
    found = findings if isinstance(findings, list | tuple) else list(findings)
    by_code: Counter[tuple[str, str]] = Counter(map(attrgetter("severity", "code"), found))
    by_group: Counter[tuple[str | None, str]] = Counter(map(attrgetter("group_id", "code"), found))
    for key in [k for k in by_group if not k[0]]:
        del by_group[key]
    return by_code, by_group


def summary_lines(
    findings: Iterable[Finding],
    group_name: Callable[[str], str],
    top: int = TOP_GROUPS,
) -> list[str]:
    """SUMMARY: one line per severity with its codes, then the top groups × code."""
    by_code, by_group = _counts(findings)
    total = sum(by_code.values())
    lines = [f"SUMMARY: {total} finding(s)"]
    for severity in SEVERITY_ORDER:
        codes = sorted(
            ((code, n) for (sev, code), n in by_code.items() if sev == severity),
            key=lambda item: (-item[1], item[0]),
        )
        listed = ", ".join(f"{code} {n}" for code, n in codes) or "none"
        lines.append(f"  {severity.upper():<7} {sum(n for _, n in codes):>6}  {listed}")
    ranked = sorted(by_group.items(), key=lambda item: (-item[1], item[0][1], item[0][0] or ""))
    if ranked:
        lines.append(f"  Top groups x code ({min(top, len(ranked))} of {len(ranked)}):")
        for (group_id, code), count in ranked[:top]:
            lines.append(f"  {count:>8}  {code:<34} {group_name(group_id or '')}")
    return lines


def summary_json(
    findings: Iterable[Finding], group_name: Callable[[str], str], top: int = TOP_GROUPS
) -> dict[str, Any]:
    by_code, by_group = _counts(findings)
    ranked = sorted(by_group.items(), key=lambda item: (-item[1], item[0][1], item[0][0] or ""))
    return {
        "total": sum(by_code.values()),
        "bySeverity": {
            s: sum(n for (sev, _), n in by_code.items() if sev == s) for s in SEVERITY_ORDER
        },
        "byCode": [
            {"severity": sev, "code": code, "count": n}
            for (sev, code), n in sorted(
                by_code.items(), key=lambda i: (SEVERITY_ORDER.get(i[0][0], 3), -i[1])
            )
        ],
        "topGroups": [
            {
                "groupId": group_id,
                "groupName": group_name(group_id or ""),
                "code": code,
                "count": n,
            }
            for (group_id, code), n in ranked[:top]
        ],
    }
