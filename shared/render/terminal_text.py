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
from itertools import filterfalse

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 (ESC, BEL, CR, LF, TAB...), DEL and C1 (an 8-bit CSI is ESC [ to many terminals), the
Unicode line and paragraph separators, and the bidirectional embeddings, overrides and
isolates (a terminal shows the rest of the line reordered: one name can read as another's)."""

_ASCII_CONTROLS = bytes(range(0x20)) + b"\x7f"

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
    """Lines joined by newlines, each `printable`: a newline inside a line is a name's."""
    text = "\n".join(lines)
    if text.isascii():
        clean = _only_line_breaks(text, len(lines))
    else:
        ascii_lines = list(filter(str.isascii, lines))
        clean = _only_line_breaks("\n".join(ascii_lines), len(ascii_lines)) and all(
            map(str.isprintable, filterfalse(str.isascii, lines))
        )
    return text if clean else "\n".join(map(printable, lines))


def _only_line_breaks(text: str, lines: int) -> bool:
    """Whether the ASCII `text`, `lines` lines joined by newlines, holds no control character
    but those newlines. One pass in C over the chunk: `str.isprintable` on every line cost a
    sixth of a 100k-user table's time (ASCII's only control characters are C0 and DEL, which
    deleting counts; the few lines with other characters are checked as before)."""
    raw = text.encode("ascii")
    return len(raw) - len(raw.translate(None, _ASCII_CONTROLS)) == max(lines - 1, 0)
