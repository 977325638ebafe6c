"""Text for a terminal: names from the tenant with their control characters escaped visibly.

A display name, group name or UPN is whatever its author typed, or a sync wrote: an ESC
sequence in one reached the admin's terminal through the tables (retitle the window, clear the
screen, hide the lines after it), a carriage return wrote over the line's start, and a newline
broke a table row in two. Every human-readable table and checklist goes through `printable`;
JSON and CSV keep the names as Graph holds them (CSV is formula-safe, `csvsafe`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e"
    r"\u2060-\u2064\u2066-\u2069\ufeff]"
)
"""C0 (ESC, BEL, CR, LF, TAB...), DEL and C1 (an 8-bit CSI is ESC [ to many terminals), the
Unicode line and paragraph separators, the bidirectional marks, embeddings, overrides and
isolates (a terminal shows the rest of the line reordered: one name can read as another's), and
the invisible zero-width space, word joiner, invisible operators and BOM ("Sales" and
"Sal\u200bes" look alike). The zero-width (non-)joiners stay: Persian names and emoji need them."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def printable(text: str) -> str:
    """`text` on one line, each control character written as its escape (`\\x1b`, `\\n`)."""
    if text.isprintable():  # nearly every line: no regex pass
        return text
    return _CONTROL.sub(_escape, text)


def printable_lines(lines: Sequence[str]) -> str:
    """Lines joined by newlines, each `printable`: a newline inside a line is a name's. For
    the small tables (whatif, diff, migration, preflight); the evaluate table, which can be
    hundreds of megabytes, escapes where the tenant's text enters its lines instead."""
    if all(map(str.isprintable, lines)):
        return "\n".join(lines)
    return "\n".join(map(printable, lines))
