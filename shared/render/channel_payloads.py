"""What an alert looks like outside the mailbox: a Microsoft Teams Adaptive Card (posted to a
Teams Workflows incoming-webhook URL), Slack Block Kit (an incoming webhook), and a generic
webhook JSON document with a versioned schema (docs/alert-webhook.schema.json).

Teams and Slack get the mail's own view (`MailView`: the same grouped rows, counts, fixes and
links, and its sections' tables and paragraphs, `channel_sections`); the generic webhook gets
the findings themselves (keys, codes, severities, names, admin-center links) and the sections.
Size limits are the receivers': a Teams card at most 28 KB, Slack at most 50 blocks (and 3,000
characters a text block). A longer alert is cut to what fits, says how many rows or lines it
left out, and links to the report page.

Pure: values in, JSON-ready dicts out; signing is HMAC-SHA256 over the exact body bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from shared.core import links
from shared.core.wording import counted
from shared.platform.channel_config import SEVERITIES
from shared.render.channel_finding import ChannelFinding
from shared.render.channel_sections import (
    at_least,
    fit,
    shows_text,
    slack_cut,
    slack_escape,
    slack_section,
    table_lines,
    teams_line,
    teams_section,
    teams_text,
    webhook_sections,
)
from shared.render.mail import MailView, RowView, Section

WEBHOOK_SCHEMA_VERSION: Final = "1.2"
TEAMS_MAX_BYTES: Final = 28_000
SLACK_MAX_BLOCKS: Final = 50
ADAPTIVE_CARD_VERSION: Final = "1.4"
DIGEST_HEADER: Final = "X-License-Guard-Digest"
SIGNATURE_HEADER: Final = "X-License-Guard-Signature"


def _row_text(row: RowView) -> str:
    names = ", ".join(u.display_name for u in row.users)
    more = f" {row.more_text}" if row.more else ""
    at_least = "at least " if row.more_is_minimum else ""
    users = f"{at_least}{counted(len(row.users) + row.more, 'user')}"
    who = f"{users}: {names}{more}" if row.users or row.more else f"{row.count}"
    return f"{row.code} — {row.group} × {row.product}: {who}"


def _rows(section: Section, minimum: str) -> list[RowView]:
    return [row for row in section.items if at_least(row.severity, minimum)]


# --------------------------------------------------------------------------- Teams


def _card(
    view: MailView, body_rows: list[dict[str, Any]], report_url: str | None
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": view.title,
            "weight": "Bolder",
            "size": "Large",
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": teams_text(view.tenant),
            "isSubtle": True,
            "spacing": "None",
        },
        *({"type": "TextBlock", "text": teams_text(line), "wrap": True} for line in view.lead),
        *body_rows,
    ]
    actions = [{"type": "Action.OpenUrl", "title": title, "url": url} for title, url in view.links]
    if report_url:
        actions.insert(
            0, {"type": "Action.OpenUrl", "title": "Open the report page", "url": report_url}
        )
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
        "actions": actions,
    }


def _teams_row(section: str, row: RowView) -> dict[str, Any]:
    colour = {"error": "Attention", "warning": "Warning"}.get(row.severity, "Default")
    facts = [
        {"title": "Cause", "value": teams_text(row.cause)},
        {"title": "Fix", "value": teams_text(row.fix)},
    ]
    if row.action:
        facts.append({"title": "License Guard", "value": teams_text(row.action)})
    return {
        "type": "Container",
        "separator": True,
        "items": [
            {"type": "TextBlock", "text": section, "isSubtle": True, "size": "Small", "wrap": True},
            {
                "type": "TextBlock",
                "text": teams_text(_row_text(row)),
                "color": colour,
                "weight": "Bolder",
                "wrap": True,
            },
            {"type": "FactSet", "facts": facts},
        ],
    }


def teams_message(
    view: MailView, *, minimum: str = "info", report_url: str | None = None
) -> dict[str, Any]:
    """The Workflows webhook's message: one Adaptive Card attachment, at most 28 KB. The
    grouped rows and each text section's table lines share the room (`fit`); what is left
    out is counted where it would have been."""
    rows = [_rows(section, minimum) for section in view.sections]
    lines = {
        i: table_lines(s, minimum) for i, s in enumerate(view.sections) if shows_text(s, minimum)
    }

    def message(items: int, kept: Mapping[int, int], worst: bool = False) -> dict[str, Any]:
        """With the first `items` rows and `kept[i]` lines of section i; `worst`: every
        note as long as it can be."""
        body: list[dict[str, Any]] = []
        placed = 0
        for i, section in enumerate(view.sections):
            if i in lines:
                left = len(lines[i]) if worst else len(lines[i]) - kept[i]
                body.append(teams_section(section, lines[i][: kept[i]], left, report_url))
            shown = rows[i][: items - placed]
            body += [_teams_row(section.title, row) for row in shown]
            placed += len(shown)
        total = sum(map(len, rows))
        if left := total if worst else total - placed:
            body.append(_more_note(left, report_url))
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": _card(view, body, report_url),
                }
            ],
        }

    def size(element: dict[str, Any]) -> int:
        return len(orjson.dumps(element)) + 1  # and a comma

    parts = [
        [
            size(_teams_row(s.title, row))
            for s, shown in zip(view.sections, rows, strict=True)
            for row in shown
        ],
        *([size(teams_line(cells)) for cells in lines[i]] for i in lines),
    ]
    room = TEAMS_MAX_BYTES - len(orjson.dumps(message(0, dict.fromkeys(lines, 0), worst=True)))
    items, *kept = fit(parts, room)
    return message(items, dict(zip(lines, kept, strict=True)))


def _more_note(left: int, report_url: str | None) -> dict[str, Any]:
    where = " Open the report page for all of them." if report_url else ""
    text = f"{counted(left, 'more row')} left out to fit Teams' card size.{where}"
    return {"type": "TextBlock", "text": text, "wrap": True, "isSubtle": True}


# --------------------------------------------------------------------------- Slack


def slack_message(
    view: MailView, *, minimum: str = "info", report_url: str | None = None
) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit, at most 50 blocks."""
    head: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": view.title[:150]}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": slack_escape(view.tenant)}],
        },
    ]
    if view.lead:
        lead = slack_cut(slack_escape("\n".join(view.lead)))
        head.append({"type": "section", "text": {"type": "mrkdwn", "text": lead}})
    buttons = [(t, u) for t, u in view.links]
    if report_url:
        buttons.insert(0, ("Open the report page", report_url))
    tail = [
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": t[:75]}, "url": u}
                for t, u in buttons[:5]
            ],
        }
    ]
    rows = [_rows(section, minimum) for section in view.sections]
    texts = {
        i: slack_section(s, minimum, report_url)
        for i, s in enumerate(view.sections)
        if shows_text(s, minimum)
    }
    # a divider and the "more" note besides the text sections' blocks
    room = max(0, SLACK_MAX_BLOCKS - len(head) - len(tail) - 2 - len(texts))
    body: list[dict[str, Any]] = [{"type": "divider"}]
    placed = 0
    for i, section_rows in enumerate(rows):
        if i in texts:
            body.append(texts[i])
        shown = section_rows[: room - placed]
        body += [_slack_row(row) for row in shown]
        placed += len(shown)
    if left := sum(map(len, rows)) - placed:
        where = " Open the report page for all of them." if report_url else ""
        note = f"{counted(left, 'more row')} left out to fit Slack's 50 blocks.{where}"
        body.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    fallback = slack_escape(f"{view.title} ({view.tenant})")  # the notification's text: mrkdwn
    return {"text": fallback, "blocks": head + body + tail}


def _slack_row(row: RowView) -> dict[str, Any]:
    text = (
        f"*{slack_escape(_row_text(row))}*\n{slack_escape(row.cause)}\n"
        f"_Fix:_ {slack_escape(row.fix)}"
    )
    if row.action:
        text += f"\n_License Guard:_ {slack_escape(row.action)}"
    return {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(text)}}


# --------------------------------------------------------------------------- generic webhook


def _finding_json(f: ChannelFinding) -> dict[str, Any]:
    doc: dict[str, Any] = {"key": f.key, "code": f.code, "severity": f.severity, "status": f.status}
    if f.user_id:
        doc["user"] = {
            "id": f.user_id,
            "displayName": f.user_name,
            "userPrincipalName": f.user_principal_name,
            "link": links.entra_user_url(f.user_id),
            "licensesLink": links.user_license_url(f.user_id),
        }
    if f.group_id:
        doc["group"] = {
            "id": f.group_id,
            "displayName": f.group_name,
            "link": links.group_license_url(f.group_id),
        }
    if f.sku_id:
        doc["product"] = {"skuId": f.sku_id, "name": f.product}
    if f.queue:
        doc["queue"] = {"name": f.queue}
    return doc


def webhook_payload(
    *,
    digest_id: str,
    kind: str,
    tenant: str,
    title: str,
    generated_at: str,
    findings: Sequence[ChannelFinding],
    minimum: str = "info",
    report_url: str | None = None,
    open_counts: Mapping[str, int] | None = None,
    view: MailView | None = None,
) -> dict[str, Any]:
    """The generic webhook's document (docs/alert-webhook.schema.json, version 1.2).

    `open_counts`: the tenant's open findings by severity (what the digest counts as open);
    `counts.open` is their total at or above `minimum`, however few findings the document
    lists. Without it, the listed findings with status 'open' are counted. `view`: the mail's,
    whose text sections (tables, paragraphs) are the document's `sections`."""
    kept = [f for f in findings if at_least(f.severity, minimum)]
    counts = {s: sum(1 for f in kept if f.status == s) for s in ("new", "resolved", "open")}
    if open_counts is not None:
        counts["open"] = sum(
            n for s, n in open_counts.items() if s in SEVERITIES and at_least(s, minimum)
        )
    return {
        "schemaVersion": WEBHOOK_SCHEMA_VERSION,
        "digestId": digest_id,
        "kind": kind,
        "tenant": tenant,
        "title": title,
        "generatedAt": generated_at,
        "counts": counts,
        "findings": [_finding_json(f) for f in kept],
        "reportUrl": report_url,
        "sections": webhook_sections(view, minimum),
    }


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time)."""
    return hmac.compare_digest(signature(secret, body), header)
