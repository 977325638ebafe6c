"""One assertion for what a command printed: every expected piece is in the text, and a failure
names all the pieces that are missing, not only the first."""

from __future__ import annotations


def assert_shows(text: str, *expected: str) -> None:
    missing = [piece for piece in expected if piece not in text]
    assert not missing, f"missing {missing} in:\n{text}"
