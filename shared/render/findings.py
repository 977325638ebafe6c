"""One finding as the reports show it: a JSON object (camelCase, with portal links) and the
indented lines of the readable tables. Every report family renders findings through here.
"""

from __future__ import annotations

from typing import Any

import orjson

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


class FindingJsonEncoder:
    """`finding_json` as orjson writes it, in pieces: the bytes findings share are made once.

    A new licensing group gives hundreds of thousands of findings that differ only in the user
    (key, message, link): building a dict per finding cost more than the rest of the report.
    Here the parts that do not depend on the user (code, severity, SKU, group, remedy, group
    link) are encoded once per distinct value; a finding costs its message and a join.
    JSON string escaping is per character, so escaped pieces concatenate to the escaped whole.
    """

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str, str | None, str | None], tuple[bytes, bytes]] = {}
        self._remedies: dict[str, bytes] = {}
        self._group_links: dict[str, bytes] = {}
        self._subject: str | None = None
        self._subject_parts: tuple[bytes, bytes] = (b"", b"")

    def extend(self, parts: list[bytes], finding: Finding) -> None:
        """Append the pieces of `orjson.dumps(finding_json(finding))` to `parts`."""
        code, severity, subject, sku_id, group_id, message, remedy, user_ids, *_, part = finding
        if subject is not self._subject and subject != self._subject:
            # findings come grouped by subject: a user's are consecutive
            self._subject = subject
            # finding_url names the page of the subject; the group has its own groupLink
            link = b',"link":' + orjson.dumps(finding_url(subject, group_id))
            self._subject_parts = (b'{"key":"' + _escaped(subject), link)
        opening, link = self._subject_parts
        head = self._heads.get((code, severity, sku_id, group_id))
        if head is None:
            head = self._head(code, severity, sku_id, group_id)
        tail = self._remedies.get(remedy)
        if tail is None:
            tail = self._remedies[remedy] = b',"remedy":' + orjson.dumps(remedy)
        group_link = b""
        if group_id and subject and ":" not in subject:  # finding.user_id
            group_link = self._group_links.get(group_id) or self._group_link(group_id)
        parts += (
            opening,
            head[0],
            _escaped(f"|{part}") if part else b"",
            head[1],
            orjson.dumps(message),
            tail,
            link,
            group_link,
            b',"userIds":' + orjson.dumps(user_ids) + b"}" if user_ids else b"}",
        )

    def _head(
        self, code: str, severity: str, sku_id: str | None, group_id: str | None
    ) -> tuple[bytes, bytes]:
        # the key after its subject, then the fields up to the message
        head = (
            _escaped(f"|{sku_id or '-'}|{code}|{group_id or '-'}"),
            b'","code":'
            + orjson.dumps(code)
            + b',"severity":'
            + orjson.dumps(severity)
            + b',"skuId":'
            + orjson.dumps(sku_id)
            + b',"groupId":'
            + orjson.dumps(group_id)
            + b',"message":',
        )
        self._heads[(code, severity, sku_id, group_id)] = head
        return head

    def _group_link(self, group_id: str) -> bytes:
        link = b',"groupLink":' + orjson.dumps(group_license_url(group_id))
        self._group_links[group_id] = link
        return link


def _escaped(text: str) -> bytes:
    """The text as a JSON string's contents (orjson's escaping, without the quotes)."""
    return orjson.dumps(text)[1:-1]


class FindingLines:
    """`finding_lines` at one indent for many findings: the fix, link and group lines that
    findings share (one remedy, one user's page, one group's page) are formatted once."""

    def __init__(self, indent: str) -> None:
        self._indent = indent
        self._heads: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, str] = {}
        self._groups: dict[str, str] = {}
        self._subject: str | None = None
        self._at = ""

    def of(self, finding: Finding) -> list[str]:
        """The same lines as `finding_lines(finding, indent)`."""
        indent = self._indent
        code, severity, subject, _sku, group_id, message, remedy, *_ = finding
        head = self._heads.get((severity, code))
        if head is None:
            head = self._heads[(severity, code)] = f"{indent}{severity.upper():<7} {code}: "
        fix = self._fixes.get(remedy)
        if fix is None:
            fix = self._fixes[remedy] = f"{indent}        fix: {remedy}"
        if subject != self._subject:
            # finding_url names the page of the subject; the group has its own line
            self._subject = subject
            self._at = f"{indent}        at:  {finding_url(subject, group_id)}"
        lines = [head + message, fix, self._at]
        if group_id and finding.user_id:
            group = self._groups.get(group_id)
            if group is None:
                group = f"{indent}        group: {group_license_url(group_id)}"
                self._groups[group_id] = group
            lines.append(group)
        return lines
