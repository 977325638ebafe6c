"""A mail's text sections on the channels: the title, paragraphs and table of each section
that has more than grouped rows (the nightly summary's findings by issue, seat forecast and
configuration drift; the digest's resolved list; an immediate alert's audit entries), as a
Teams card container, a Slack section block or the webhook's `sections`.

The receivers' limits are shared by the sections: `fit` hands out room one line of each part
in turn, so a long part cannot crowd out the others, and a part cut short says how many lines
it left out and where they are. Also the escaping each receiver needs. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from shared.core.wording import counted
from shared.platform.channel_config import SEVERITIES
from shared.render.mail import MailView, Section

SLACK_MAX_TEXT: Final = 3000
SEVERITY_COLUMN: Final = "Severity"


def at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def fit(sizes: Sequence[Sequence[int]], room: int) -> list[int]:
    """How many of each part's units (of `sizes`, in order) fit in `room`: one unit of each
    part in turn while the next fits; a part stops at its first unit that does not."""
    kept = [0] * len(sizes)
    going = [bool(units) for units in sizes]
    while any(going):
        for part, units in enumerate(sizes):
            if not going[part]:
                continue
            n = kept[part]
            if n == len(units) or units[n] > room:
                going[part] = False
                continue
            room -= units[n]
            kept[part] += 1
    return kept


def shows_text(section: Section, minimum: str) -> bool:
    """Whether a channel at `minimum` shows the section beside the grouped rows: it has
    paragraphs, or a table with a line at or above `minimum`. A table whose lines are all
    below it is left out, not shown as its column headings; one of no lines at all is shown
    as the mail shows it."""
    table = section.table
    if section.paragraphs:
        return True
    return table is not None and (not table.rows or bool(table_lines(section, minimum)))


def text_sections(view: MailView, minimum: str) -> list[Section]:
    """The sections a channel at `minimum` shows beside the grouped rows (`shows_text`)."""
    return [s for s in view.sections if shows_text(s, minimum)]


def _row_severities(section: Section) -> list[str | None]:
    """Each table row's severity: the table's `severities`, or its first column when that is
    the severity (the baseline's counts); None for a row of a table without one."""
    table = section.table
    if table is None:
        return []
    if table.severities:
        return list(table.severities)
    if table.columns[:1] == (SEVERITY_COLUMN,):
        return [r[0] if r and r[0] in SEVERITIES else None for r in table.rows]
    return [None] * len(table.rows)


def table_lines(section: Section, minimum: str) -> list[tuple[str, ...]]:
    """The table's rows at or above `minimum` when they have a severity (the baseline's
    counts, the digest's resolved list), every row otherwise."""
    table = section.table
    if table is None:
        return []
    return [
        r
        for r, severity in zip(table.rows, _row_severities(section), strict=True)
        if severity is None or at_least(severity, minimum)
    ]


def worth_posting(view: MailView, minimum: str, findings: Sequence[str] = ()) -> bool:
    """Whether a channel at `minimum` gets a post of `view`: when one of its grouped rows,
    its table lines by severity or `findings` (their severities) is at or above `minimum`,
    and always when it has none of these (the nightly summary, a baseline of no issues). The
    same for every kind of channel: a post of only the lead and column headings is none."""
    graded = [r.severity for s in view.sections for r in s.items]
    graded += [g for s in view.sections for g in _row_severities(s) if g is not None]
    graded += findings
    return not graded or any(at_least(g, minimum) for g in graded if g in SEVERITIES)


def more_lines(left: int, target: str, report_url: str | None) -> str:
    where = "the mail or the report page" if report_url else "the mail"
    return f"… {counted(left, 'more line')} left out to fit {target} (see {where})."


# --------------------------------------------------------------------------- Teams

_NO_BREAK: Final = "\u200b"
"""A zero-width space: invisible, and ends the Markdown syntax where it is inserted."""
_ASTERISK: Final = "\u2217"
"""`∗` (asterisk operator) for `*`: an asterisk opens or closes emphasis even inside a word
and beside a zero-width space, so no invisible breaker stops `**VIP**` from being bold."""
_LINE_START: Final = re.compile(r"(?:^|(?<=[\r\n]))(?=[ \t]|[#>+\-=|`~_:]|\d{1,9}[.)])")
"""A line (after `\n` or `\r`, both line breaks to Teams) starting with what makes a Markdown
block: a heading (`#`, a `===`/`---` underline), list item (`-`, `+`, `1.`, `1)`), quote
(`>`), table, code fence, or a blank (four make code)."""
_EDGE_UNDERSCORE: Final = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
"""An `_` not inside a word: only there can it open or close emphasis."""
_GRAVE: Final = "\u02cb"
"""`ˋ` (modifier letter grave) for a backtick, which would start code with or without a
zero-width space after it."""
_ESCAPE: Final = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
"""A backslash before ASCII punctuation: Markdown drops it as an escape."""


def teams_text(text: str) -> str:
    """Text a TextBlock or fact shows as written: Teams reads them as Markdown, where
    directory text would become a link (`[Sign in](https://...)`, `<https://...>`), bold or
    italic (`**VIP**`, `_Temp_`), struck out (`~~Old~~`), code (`` `x` ``), an entity (`&lt;`), or a
    heading, list or quote (a line starting `# Finance`, `- Contractors`, `1. Staff`,
    `> Sales`). Backslash escapes are not honoured alike by every Teams client, so instead a
    zero-width space goes where such syntax would start (after `]`, `<`, `&`, `~`, a
    backslash, around an `_` at a word's edge, before such a line), `*` is shown as `∗` and
    a backtick as `ˋ`; `Licensing_E3_0` and other names without them are unchanged."""
    text = text.replace("*", _ASTERISK)
    text = _ESCAPE.sub("\\" + _NO_BREAK, text)
    text = text.replace("`", _GRAVE)
    for mark in ("]", "<", "&", "~"):
        text = text.replace(mark, mark + _NO_BREAK)
    text = _EDGE_UNDERSCORE.sub(_NO_BREAK + "_" + _NO_BREAK, text)
    return _LINE_START.sub(_NO_BREAK, text)


def teams_line(cells: Sequence[str]) -> dict[str, Any]:
    return {"type": "TextBlock", "text": teams_text(" | ".join(cells)), "wrap": True}


def teams_section(
    section: Section, lines: Sequence[tuple[str, ...]], left: int, report_url: str | None
) -> dict[str, Any]:
    """The section's container: title, paragraphs, the table's columns and `lines`, and
    how many lines were `left` out."""
    items: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": teams_text(section.title), "weight": "Bolder", "wrap": True},
        *({"type": "TextBlock", "text": teams_text(p), "wrap": True} for p in section.paragraphs),
    ]
    if section.table is not None:
        items.append({**teams_line(section.table.columns), "isSubtle": True})
        items += [teams_line(cells) for cells in lines]
    if left:
        note = more_lines(left, "Teams' card size", report_url)
        items.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True})
    return {"type": "Container", "separator": True, "items": items}


# --------------------------------------------------------------------------- Slack


_SLACK_LOOK_ALIKES: Final = str.maketrans({"*": "\u2217", "~": "\u223c", "`": "\u02cb"})
"""`∗`, `∼` and `ˋ` for `*`, `~` and a backtick: Slack has no escape for its mrkdwn marks
(bold, strike-through, code), and counts a zero-width space as a word's edge."""
_SLACK_EDGE_UNDERSCORE: Final = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_SLACK_QUOTE: Final = re.compile(r"(?:^|(?<=\n))([ \t]*)>")


def slack_escape(text: str) -> str:
    """Directory text that shows as written in Slack mrkdwn: its control characters escaped
    (`&`, `<`, `>`; Slack: "Formatting text for app surfaces") and its formatting marks shown
    as look-alikes: `*` as `∗`, `~` as `∼`, a backtick as `ˋ`, an `_` at a word's edge (only
    there does it make italics) as `ˍ`, and a `>` starting a line (a quote) as `˃`. A name
    like `Licensing_E3_0` is unchanged."""
    text = _SLACK_QUOTE.sub("\\1\u02c3", text.translate(_SLACK_LOOK_ALIKES))
    text = _SLACK_EDGE_UNDERSCORE.sub("\u02cd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_cut(text: str, limit: int = SLACK_MAX_TEXT) -> str:
    """Escaped `text` at most `limit` characters long, cut before an escape (`&amp;`, `&lt;`,
    `&gt;`) rather than inside it: a cut `&am` shows as it is, and `&` alone is no valid
    mrkdwn."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    start = cut.rfind("&", max(0, limit - len("&amp;") + 1))
    return cut[:start] if start != -1 and ";" not in cut[start:] else cut


def slack_section(section: Section, minimum: str, report_url: str | None) -> dict[str, Any]:
    """The section as one mrkdwn block: title, paragraphs, the table's columns and as many
    of its lines as fit in 3,000 characters, then how many were left out."""
    text = "\n".join([f"*{slack_escape(section.title)}*", *map(slack_escape, section.paragraphs)])
    lines = table_lines(section, minimum)
    if section.table is not None:
        text += "\n_" + slack_escape(" | ".join(section.table.columns)) + "_"
    shown = [slack_escape(" | ".join(cells)) for cells in lines]
    whole = "\n".join([text, *shown])
    if len(whole) > SLACK_MAX_TEXT:
        note = "\n" + more_lines(len(lines), "Slack's 3,000 characters a block", report_url)
        kept = 0
        while kept < len(shown) and len(text) + 1 + len(shown[kept]) + len(note) <= (
            SLACK_MAX_TEXT
        ):
            text += "\n" + shown[kept]
            kept += 1
        whole = (
            text
            + "\n"
            + more_lines(len(lines) - kept, "Slack's 3,000 characters a block", report_url)
        )
    return {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(whole)}}


# --------------------------------------------------------------------------- webhook


def webhook_sections(view: MailView | None, minimum: str) -> list[dict[str, Any]]:
    """The webhook document's `sections` (schema 1.2): each text section's title, paragraphs
    and table; the findings themselves are the document's `findings`."""
    if view is None:
        return []
    found = []
    for section in text_sections(view, minimum):
        doc: dict[str, Any] = {"title": section.title, "paragraphs": list(section.paragraphs)}
        if section.table is not None:
            doc["table"] = {
                "columns": list(section.table.columns),
                "rows": [list(r) for r in table_lines(section, minimum)],
            }
        found.append(doc)
    return found
