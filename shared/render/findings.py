"""One finding as the reports show it: a JSON object (camelCase, with portal links) and the
indented lines of the readable tables. Every report family renders findings through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from shared.core.findings import Finding, finding_fields
from shared.core.links import finding_url, group_license_url
from shared.core.pending_findings import PendingAssignment, PendingAssignments, pending_findings
from shared.render.terminal_text import printable


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
        self._pending: dict[PendingAssignment, bytes] = {}
        self._combinations: dict[int, tuple[PendingAssignments, tuple[bytes, ...]]] = {}
        self._subject: str | None = None
        self._subject_cache: tuple[bytes, bytes, bool] = (b"", b"", False)

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
            escaped_subject, link, is_user = self._subject_parts(subject)
            key = (code, severity, sku_id, group_id, remedy, is_user)
            template = templates.get(key)
            if template is None:
                template = templates[key] = _template(*key)
            encoded.append(template % (escaped_subject, dumps(message), link))
        return b",".join(encoded)

    def encode_pending(self, user_id: str, name: str, pending: PendingAssignments) -> bytes:
        """`encode(pending_findings(user_id, name, pending))`, without building them.

        A pending finding differs from another of its (SKU, group) only in the user's id and
        name: its template holds the message's tail too, so it costs one `%` (no Finding, no
        message string, no message encoding). A group combination's tuple of templates is
        kept with its pending tuple (shared by its members), the value keeping it alive.
        """
        escaped_subject, link, is_user = self._subject_parts(user_id)
        if not is_user:  # not a user's subject: no groupLink, the templates do not fit
            return self.encode(pending_findings(user_id, name, pending))
        cached = self._combinations.get(id(pending))
        if cached is None:
            templates = tuple(self._pending_template(entry) for entry in pending)
            cached = self._combinations[id(pending)] = (pending, templates)
        args = (escaped_subject, _escaped(name), link)
        return b",".join([template % args for template in cached[1]])

    def _pending_template(self, entry: PendingAssignment) -> bytes:
        template = self._pending.get(entry)
        if template is None:
            # the finding of a user with an empty id and name: the message is the tail
            (proto,) = pending_findings("", "", (entry,))
            tail = _escaped(proto.message).replace(b"%", b"%%")
            template = self._pending[entry] = _template(
                proto.code,
                proto.severity,
                proto.sku_id,
                proto.group_id,
                proto.remedy,
                True,
                message=b'"%b' + tail + b'"',
            )
        return template

    def _subject_parts(self, subject: str) -> tuple[bytes, bytes, bool]:
        """The subject escaped, its link (JSON) and whether it is a user: a user's findings
        are consecutive, and the link depends on the subject alone (the group has its own
        groupLink), so the last subject's are kept."""
        if subject != self._subject:
            self._subject = subject
            is_user = bool(subject) and ":" not in subject  # finding.user_id
            self._subject_cache = (_escaped(subject), orjson.dumps(finding_url(subject)), is_user)
        return self._subject_cache


def _template(
    code: str,
    severity: str,
    sku_id: str | None,
    group_id: str | None,
    remedy: str,
    user: bool,
    message: bytes = b"%b",
) -> bytes:
    """A finding's JSON with `%b` for the subject (escaped), the message and the link (JSON);
    `message` (a template already) stands in the message's place."""
    dumps = orjson.dumps
    head = (
        b'{"key":"',
        None,
        _escaped(f"|{sku_id or '-'}|{code}|{group_id or '-'}"),
        b'","code":' + dumps(code) + b',"severity":' + dumps(severity),
        b',"skuId":' + dumps(sku_id) + b',"groupId":' + dumps(group_id) + b',"message":',
    )
    tail = (
        b',"remedy":' + dumps(remedy) + b',"link":',
        None,
        b',"groupLink":' + dumps(group_license_url(group_id)) if group_id and user else b"",
        b"}",
    )
    return _literal(head) + message + _literal(tail)


def _literal(parts: tuple[bytes | None, ...]) -> bytes:
    """The parts as a template: `%b` for each None, the rest as they are (`%` escaped)."""
    return b"".join(b"%b" if p is None else p.replace(b"%", b"%%") for p in parts)


def _escaped(text: str) -> bytes:
    """The text as a JSON string's contents (orjson's escaping, without the quotes)."""
    return orjson.dumps(text)[1:-1]


class FindingLines:
    """A finding's lines at one indent, for many findings: the fix, link and group lines that
    findings share (one remedy, one user's page, one group's page) are formatted once. Text for
    a terminal: what came from the tenant (in messages, names) is `printable`, escaped where
    it enters, once per cached piece, not by a pass over every line written."""

    def __init__(self, indent: str) -> None:
        self._indent = indent
        self._heads: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, str] = {}
        self._groups: dict[str, str] = {}
        self._pending: dict[PendingAssignment, tuple[str, str, str]] = {}
        self._combinations: dict[
            int, tuple[PendingAssignments, tuple[tuple[str, str, str], ...]]
        ] = {}
        self._subject: str | None = None
        self._at = ""

    def of(self, finding: Finding) -> list[str]:
        """Its head (severity, code, message), fix and `at:` lines, and `group:` for a user's
        finding from a group."""
        code, severity, subject, _sku, group_id, message, remedy, *_ = finding
        head = self._head(severity, code) + printable(message)
        lines = [head, self._fix(remedy), self._at_line(subject)]
        if group_id and finding.user_id:
            lines.append(self._group(group_id))
        return lines

    def pending(self, user_id: str, name: str, pending: PendingAssignments) -> list[str]:
        """The lines of `pending_findings(user_id, name, pending)`, without building them.

        Each (SKU, group)'s lines are a template with the user's name and `at:` line to fill,
        kept per group combination like `FindingJsonEncoder.encode_pending`'s. One item per
        line, as `of` gives them.
        """
        if not user_id or ":" in user_id:  # not a user's subject: no `group:` line
            return [line for f in pending_findings(user_id, name, pending) for line in self.of(f)]
        cached = self._combinations.get(id(pending))
        if cached is None:
            templates = tuple(self._pending_template(entry) for entry in pending)
            cached = self._combinations[id(pending)] = (pending, templates)
        at = self._at_line(user_id)
        lines: list[str] = []
        for head, fix, group in cached[1]:
            lines += (head % printable(name), fix, at, group)
        return lines

    def _pending_template(self, entry: PendingAssignment) -> tuple[str, str, str]:
        template = self._pending.get(entry)
        if template is None:
            # the finding of a user with an empty id and name: the message is the tail
            (proto,) = pending_findings("", "", (entry,))
            head = self._head(proto.severity, proto.code)
            message = printable(proto.message)
            lines = (head, message, self._fix(proto.remedy), self._group(entry.group_id))
            head, tail = (line.replace("%", "%%") for line in lines[:2])
            template = self._pending[entry] = (f"{head}%s{tail}", lines[2], lines[3])
        return template

    def _head(self, severity: str, code: str) -> str:
        head = self._heads.get((severity, code))
        if head is None:
            # an error Graph names that we do not know is its finding's code
            head = f"{self._indent}{severity.upper():<7} {printable(code)}: "
            self._heads[(severity, code)] = head
        return head

    def _fix(self, remedy: str) -> str:
        fix = self._fixes.get(remedy)
        if fix is None:
            fix = self._fixes[remedy] = f"{self._indent}        fix: {printable(remedy)}"
        return fix

    def _at_line(self, subject: str) -> str:
        if subject != self._subject:
            # finding_url names the page of the subject; the group has its own line
            self._subject = subject
            self._at = printable(f"{self._indent}        at:  {finding_url(subject)}")
        return self._at

    def _group(self, group_id: str) -> str:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = printable(
                f"{self._indent}        group: {group_license_url(group_id)}"
            )
        return group
