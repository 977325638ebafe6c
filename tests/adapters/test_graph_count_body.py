"""A text/plain `$count` answer read as Graph may send it: digits, maybe after a UTF-8
byte-order mark and around whitespace; anything else is a 502 `DirectoryError`."""

from __future__ import annotations

import pytest

from shared.adapters.graph_transport import count_body
from shared.ports.directory import DirectoryError


@pytest.mark.parametrize("raw", [b"893", b"893\r\n", b"\xef\xbb\xbf893"])
def test_a_count_answer_is_its_number(raw: bytes) -> None:
    assert count_body(raw) == 893


@pytest.mark.parametrize("raw", [None, b"", b"{}", b"\xff893"])
def test_a_count_answer_without_a_number_is_a_directory_error(raw: bytes | None) -> None:
    with pytest.raises(DirectoryError) as err:
        count_body(raw)
    assert (err.value.status, err.value.code) == (502, "UnexpectedBody")
