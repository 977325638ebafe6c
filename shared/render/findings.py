"""One finding as the reports show it: a JSON object (camelCase, with portal links) and the
indented lines of the readable tables. Every report family renders findings through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from shared.core.findings import Finding, finding_fields
from shared.core.links import finding_url, group_license_url


def finding_json(finding: Finding) -> dict[str, Any]:
    doc: dict[str, Any] = {
        **finding_fields(finding),
        "link": finding_url(finding.subject),
    }
    if finding.group_id and finding.user_id:
        doc["groupLink"] = group_license_url(finding.group_id)
    if finding.user_ids:
        doc["userIds"] = list(finding.user_ids)
    return doc


def finding_lines(finding: Finding, indent: str) -> list[str]:
    """A finding's lines in the readable tables (`FindingLines` for many at one indent)."""
    return FindingLines(indent).of(finding)


class FindingJsonEncoder:
    """`orjson.dumps(finding_json(finding))`, from templates: what findings share is made once.

    A new licensing group gives hundreds of thousands of findings that differ only in the user
    (key, message, link): building a dict per finding cost more than the rest of the report.
    A template per (code, severity, SKU, group, remedy) holds the rest, encoded once; a finding
    costs its message's encoding and one `%` (JSON string escaping is per character, so the
    escaped pieces concatenate to the escaped whole). Findings with a `part` or `userIds` (a
    group's or product's, a few per tenant) take the plain path.
    """

    def __init__(self) -> None:
        self._templates: dict[tuple[str, str, str | None, str | None, str, bool], bytes] = {}
        self._subject: str | None = None
        self._subject_parts: tuple[bytes, bytes, bool] = (b"", b"", False)

    def encode(self, findings: Iterable[Finding]) -> bytes:
        """The findings as the items of a JSON array (comma-separated, without brackets)."""
        templates = self._templates
        dumps = orjson.dumps
        encoded = []
        for finding in findings:
            code, severity, subject, sku_id, group_id, message, remedy, user_ids = finding[:8]
            if user_ids or finding.part:
                encoded.append(dumps(finding_json(finding)))
                continue
            if subject != self._subject:
                # a user's findings are consecutive, and the link depends on the subject
                # alone (the group has its own groupLink)
                self._subject = subject
                is_user = bool(subject) and ":" not in subject  # finding.user_id
                link = dumps(finding_url(subject))
                self._subject_parts = (_escaped(subject), link, is_user)
            escaped_subject, link, is_user = self._subject_parts
            key = (code, severity, sku_id, group_id, remedy, is_user)
            template = templates.get(key)
            if template is None:
                template = templates[key] = _template(*key)
            encoded.append(template % (escaped_subject, dumps(message), link))
        return b",".join(encoded)


def _template(
    code: str, severity: str, sku_id: str | None, group_id: str | None, remedy: str, user: bool
) -> bytes:
    """A finding's JSON with `%b` for the subject (escaped), the message and the link (JSON)."""
    dumps = orjson.dumps
    parts = (
        b'{"key":"',
        None,
        _escaped(f"|{sku_id or '-'}|{code}|{group_id or '-'}"),
        b'","code":' + dumps(code) + b',"severity":' + dumps(severity),
        b',"skuId":' + dumps(sku_id) + b',"groupId":' + dumps(group_id) + b',"message":',
        None,
        b',"remedy":' + dumps(remedy) + b',"link":',
        None,
        b',"groupLink":' + dumps(group_license_url(group_id)) if group_id and user else b"",
        b"}",
    )
    return b"".join(b"%b" if p is None else p.replace(b"%", b"%%") for p in parts)


def _escaped(text: str) -> bytes:
    """The text as a JSON string's contents (orjson's escaping, without the quotes)."""
    return orjson.dumps(text)[1:-1]


class FindingLines:
    """A finding's lines at one indent, for many findings: the fix, link and group lines that
    findings share (one remedy, one user's page, one group's page) are formatted once."""

    def __init__(self, indent: str) -> None:
        self._indent = indent
        self._heads: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, str] = {}
        self._groups: dict[str, str] = {}
        self._subject: str | None = None
        self._at = ""

    def of(self, finding: Finding) -> list[str]:
        """Its head (severity, code, message), fix and `at:` lines, and `group:` for a user's
        finding from a group."""
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
            self._at = f"{indent}        at:  {finding_url(subject)}"
        lines = [head + message, fix, self._at]
        if group_id and finding.user_id:
            group = self._groups.get(group_id)
            if group is None:
                group = f"{indent}        group: {group_license_url(group_id)}"
                self._groups[group_id] = group
            lines.append(group)
        return lines
