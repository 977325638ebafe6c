"""The summary every findings report starts with: counts by severity and code, then the groups
with the most findings of one code. Shared by `evaluate` and `reconcile --dry-run`, table and
JSON, so an admin of a large tenant reads the shape of the problem before its 8,000 lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from shared.core.findings import SEVERITY_ORDER, FindingCounts

TOP_GROUPS = 10


def _counts(
    counts: FindingCounts,
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str | None, str]]]:
    by_code: Counter[tuple[str, str]] = Counter()
    by_group: Counter[tuple[str | None, str]] = Counter()
    for (severity, code, group_id), n in counts.items():
        by_code[(severity, code)] += n
        if group_id:
            by_group[(group_id, code)] += n
    return by_code, by_group


def summary_lines(
    counts: FindingCounts,
    group_name: Callable[[str], str],
    top: int = TOP_GROUPS,
) -> list[str]:
    """SUMMARY: one line per severity with its codes, then the top groups × code.

    `counts`: `core.findings.finding_counts(findings)`, or `Evaluation.finding_counts()`."""
    by_code, by_group = _counts(counts)
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
    counts: FindingCounts, group_name: Callable[[str], str], top: int = TOP_GROUPS
) -> dict[str, Any]:
    by_code, by_group = _counts(counts)
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
