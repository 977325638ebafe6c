"""Directory text on the channels shows as written, not formatted: Teams reads TextBlocks
and facts as Markdown (formatted here with markdown-it-py's `js-default`, the markdown-it
preset the browser test's page uses), Slack reads mrkdwn. Names such as `**VIP**`, `_Temp_`
or a line `# Finance` must not turn bold, italic, a heading, list or quote."""

from __future__ import annotations

import html
import re
from typing import Any

from markdown_it import MarkdownIt

from shared.render.channel_payloads import slack_message, teams_message
from shared.render.mail import MailView, RowView, Section, Table, UserName
from tests.alerts.test_channels import REPORT

NAMES = (
    "**VIP**",
    "_Temp_",
    "__Board__",
    "# Finance",
    "- Contractors",
    "+ Interns",
    "1. Staff",
    "2) Managers",
    "> Sales",
    "~~Old~~ Sales",
    "`HR` team",
    "R&amp;D \\*Lab\\*",
    "***",
    "===",
    "a*b*c",
    "(_Temp_)",
    "    Indented",
    "Staff\r- Contractors\r\n1. Interns",
    "Licensing_E3_0",
)
"""Directory text Markdown would format, and a name it would not (`Licensing_E3_0`)."""


def markdown_row(name: str) -> RowView:
    return RowView(
        severity="error",
        code="CountViolation",
        group=name,
        product="Office 365 E3",
        count=1,
        users=(UserName(name, "u@contoso.com"),),
        more=0,
        cause=name,
        example="",
        fix=name,
        action=name,
    )


def markdown_view() -> MailView:
    groups = Table(("Group", "Users in error"), tuple((name, "1") for name in NAMES))
    return MailView(
        "License Guard nightly summary",
        "**Contoso** _Ltd_",
        ("# Lead", "\n".join(NAMES)),
        (
            Section("Top groups by errors", paragraphs=NAMES, table=groups),
            Section("New issues", items=tuple(markdown_row(n) for n in NAMES)),
        ),
    )


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found += _items(item.get("items", []))
    return found


def as_written(shown: str) -> str:
    """The text as an admin reads it: without zero-width spaces, the look-alikes `∗` and `ˋ`
    read as `*` and a backtick."""
    return shown.replace("\u200b", "").replace("\u2217", "*").replace("\u02cb", "`")


def test_teams_shows_directory_text_as_written_not_as_markdown() -> None:
    card = teams_message(markdown_view(), report_url=REPORT)["attachments"][0]["content"]
    items = _items(card["body"])
    texts = [i["text"] for i in items if i["type"] == "TextBlock"]
    texts += [f["value"] for i in items for f in i.get("facts", ())]

    markdown = MarkdownIt("js-default")
    for text in texts:
        rendered = markdown.render(text)
        paragraph = re.fullmatch(r"<p>([^<]*)</p>\n", rendered)
        assert paragraph, (text, rendered)  # one paragraph of text: no tag inside
        shown = as_written(html.unescape(paragraph.group(1)))
        assert shown.split() == as_written(text).split()  # all of it (as HTML shows blanks)
    facts = [as_written(f["value"]) for i in items for f in i.get("facts", ())]
    for name in NAMES:
        assert name in facts  # each directory text, as written
    lines = [as_written(t) for t in texts]
    assert "**Contoso** _Ltd_" in lines
    assert "Licensing_E3_0 | 1" in texts  # a name without Markdown is unchanged


def slack_formats(text: str) -> list[str]:
    """What Slack mrkdwn would format in `text`, by its rules ("Formatting text for app
    surfaces"): a `*`, `_`, `~` or backtick at a word's start (a zero-width space counts as
    an edge) up to the same mark at a word's end, on one line; a line starting with `>`
    (sent as `&gt;`) is a quote."""
    found = []
    for line in text.split("\n"):
        if line.lstrip(" \t").startswith(("&gt;", ">")):
            found.append(line)
        for i, mark in enumerate(line):
            if mark not in "*_~`" or (i and line[i - 1].isalnum()):
                continue
            if i + 1 == len(line) or line[i + 1].isspace():
                continue
            for j in range(i + 2, len(line)):
                end = j + 1 == len(line) or not line[j + 1].isalnum()
                if line[j] == mark and not line[j - 1].isspace() and end:
                    found.append(line[i : j + 1])
                    break
    return found


def test_slack_shows_directory_text_as_written_not_as_mrkdwn() -> None:
    """Only License Guard's own marks format: a row's bold line, `_Fix:_`, `_License Guard:_`,
    a section's bold title and italic columns."""
    blocks = slack_message(markdown_view(), report_url=REPORT)["blocks"]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    texts += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    own = {"*Top groups by errors*", "_Group | Users in error_", "_Fix:_", "_License Guard:_"}

    formatted = [f for text in texts for f in slack_formats(text)]

    rows = [f for f in formatted if f.startswith("*CountViolation — ")]
    assert len(rows) == len([n for n in NAMES if "\n" not in n])  # each one-line row's bold
    assert [f for f in formatted if f not in own and f not in rows] == []
    shown = "\n".join(texts)
    for name in ("∗∗VIP∗∗", "ˍTempˍ", "˃ Sales", "∼∼Old∼∼ Sales", "ˋHRˋ team", "Licensing_E3_0"):
        assert name in shown
    assert slack_formats("*VIP* _Temp_ ~Old~ `HR`") == ["*VIP*", "_Temp_", "~Old~", "`HR`"]
    assert slack_formats("&gt; Sales") == ["&gt; Sales"]
