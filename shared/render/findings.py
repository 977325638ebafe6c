"""One finding as the reports show it: a JSON object (camelCase, with portal links) and the
indented lines of the readable tables. Every report family renders findings through here.
"""

from __future__ import annotations

from typing import Any

from shared.core.findings import Finding, finding_fields
from shared.core.links import finding_url, group_license_url


def finding_json(finding: Finding) -> dict[str, Any]:
    doc: dict[str, Any] = {
        **finding_fields(finding),
        "link": finding_url(finding.subject, finding.group_id),
    }
    if finding.group_id and finding.user_id:
        doc["groupLink"] = group_license_url(finding.group_id)
    if finding.user_ids:
        doc["userIds"] = list(finding.user_ids)
    return doc


def finding_lines(finding: Finding, indent: str) -> list[str]:
    lines = [
        f"{indent}{finding.severity.upper():<7} {finding.code}: {finding.message}",
        f"{indent}        fix: {finding.remedy}",
        f"{indent}        at:  {finding_url(finding.subject, finding.group_id)}",
    ]
    if finding.group_id and finding.user_id:
        lines.append(f"{indent}        group: {group_license_url(finding.group_id)}")
    return lines
