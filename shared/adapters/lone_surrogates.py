"""Lone UTF-16 surrogates in a snapshot's JSON: `"\\ud800"` with no low surrogate after it.

Python's JSON parser takes such an escape as a lone surrogate code point, which is not Unicode
text: UTF-8 cannot encode it, nor orjson, so a name holding one stopped every export (CSV, the
scripts, the report page, JSON) with a traceback. `license-guard snapshot` never writes one,
but a snapshot made or edited by another tool can (a string cut in the middle of an emoji).
Each is replaced by U+FFFD, the Unicode replacement character, as a UTF-8 decoder does with a
bad byte.
"""

from __future__ import annotations

import re
from typing import Any, Final

_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def may_hold_lone_surrogates(text: str) -> bool:
    """Whether the JSON text has a surrogate escape at all (a pair is fine, but rare enough
    to check the parsed document for a lone one); the common case costs one search."""
    return _SURROGATE_ESCAPE.search(text) is not None


def without_lone_surrogates(data: Any) -> tuple[Any, tuple[str, ...]]:
    """`data` (parsed JSON) with every string's lone surrogates replaced by U+FFFD, and the
    warning saying how many strings held one (none when none did)."""
    fixed = 0

    def walk(value: Any) -> Any:
        nonlocal fixed
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                fixed += 1
                return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
            return value
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    fixed_data = walk(data)
    if not fixed:
        return fixed_data, ()
    return fixed_data, (
        f"{fixed} text(s) held a lone UTF-16 surrogate (not Unicode text): shown as \ufffd",
    )
