"""CSV a spreadsheet opens as text: every writer of ours goes through `csv_writer`.

Display names and group names come from the directory, where anyone can set their own, and
end up in the CSV exports (`evaluate --format csv`, the nightly `paths.csv` and
`migration.csv`). A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or tab, CR,
LF) as a formula, so, following OWASP's CSV-injection guidance
(https://owasp.org/www-community/attacks/CSV_Injection):

* a cell whose first character is one of those, or that starts with whitespace or invisible
  characters followed by one, or with a full-width or small form of one (`＝＋－＠`, which
  some spreadsheets fold to ASCII), gets a leading `'`;
* a cell in which a separator a spreadsheet might split on (`,` `;` tab `|` CR LF) is followed
  by such a character would start a new, dangerous cell after the split: it gets a leading
  `'` too, and a `'` right after each such separator;
* every cell is wrapped in double quotes (embedded quotes doubled), so the whole text is one
  cell whatever the reader's separator.

Every CSV file starts with a UTF-8 byte order mark (`write_rows` writes it before the header), as
the Microsoft 365 and Entra admin centers' CSV downloads do: Excel opens a CSV without one in
the ANSI code page, and a non-ASCII display name comes out garbled.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Final

_FORMULA_ASCII: Final = frozenset("=+-@")
_CONTROL_STARTS: Final = frozenset("\t\r\n")
_SEPARATORS: Final = frozenset(",;\t|\r\n")
_EXTRA_FORMULA: Final = frozenset("\u2212")  # MINUS SIGN: not folded by NFKC, read as minus
QUOTE: Final = "'"
BOM: Final = "\ufeff"


def _is_formula_char(ch: str) -> bool:
    return (
        ch in _FORMULA_ASCII
        or ch in _EXTRA_FORMULA
        or unicodedata.normalize("NFKC", ch) in _FORMULA_ASCII  # ＝ ＋ － ＠ ﹦ ﹢ ﹣ ﹫ …
    )


def _is_ignorable(ch: str) -> bool:
    """Characters a spreadsheet may skip before a formula: spaces and invisible ones."""
    return ch.isspace() or unicodedata.category(ch) in ("Cf", "Zs")


def _formula_at(text: str, start: int) -> bool:
    """Does the text from `start` (after any ignorable characters) begin a formula?"""
    i = start
    while i < len(text) and _is_ignorable(text[i]) and not _is_formula_char(text[i]):
        i += 1
    return i < len(text) and _is_formula_char(text[i])


def safe_cell(value: object) -> str:
    """The cell's text, neutralised as the module docstring says (unchanged when harmless)."""
    text = "" if value is None else str(value)
    if not text:
        return text
    dangerous = text[0] in _CONTROL_STARTS or _formula_at(text, 0)
    parts: list[str] = []
    last = 0
    for i, ch in enumerate(text):
        if ch in _SEPARATORS and _formula_at(text, i + 1):
            parts.append(text[last : i + 1])
            parts.append(QUOTE)
            last = i + 1
            dangerous = True
    if not dangerous:
        return text
    parts.append(text[last:])
    return QUOTE + "".join(parts)


class SafeCsvWriter:
    """A `csv.writer` that neutralises and quotes every cell it writes."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: IO[str]) -> SafeCsvWriter:
    """The one way License Guard writes CSV (tests assert no other `csv.writer` is used)."""
    return SafeCsvWriter(out)


def write_rows(header: Sequence[str], rows: Iterable[Iterable[object]], out: IO[str]) -> None:
    """A CSV file: the BOM, `header`, then `rows`, every cell neutralised against formula
    injection. `out` must encode UTF-8 (`utf8_text`)."""
    out.write(BOM)
    writer = csv_writer(out)
    writer.writerow(header)
    writer.writerows(rows)


@contextmanager
def utf8_text(out: IO[bytes]) -> Iterator[IO[str]]:
    """`out` as UTF-8 text, written straight through, whatever the console's code page; `out`
    is left open."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        yield text
    finally:
        text.detach()
