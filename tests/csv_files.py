"""Reading a CSV of ours as an admin's tool does: UTF-8, its byte order mark not part of the text
(Excel, and Python's `utf-8-sig`)."""

from __future__ import annotations

import csv
import io

BOM = b"\xef\xbb\xbf"


def csv_text(data: bytes | str) -> str:
    """The file's text as `encoding="utf-8-sig"` reads it (captured stdout comes as str)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return raw.decode("utf-8-sig")


def csv_rows(data: bytes | str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text(data))))


def csv_records(data: bytes | str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text(data))))
