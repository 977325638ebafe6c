"""Counts in messages, in the singular when there is one: '1 user', '2 users'.

Pure: no I/O, no clock.
"""

from __future__ import annotations


def counted(count: int, word: str, words: str | None = None) -> str:
    """`count` and `word`, or `words` (default `word` + 's') unless `count` is 1."""
    return f"{count} {word if count == 1 else words or word + 's'}"
