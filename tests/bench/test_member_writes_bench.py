"""bench/member_writes.py times a way of writing member rows only when it wrote them: a way that
wrote nothing, or left rows behind on leave, was the fastest and passed its target. Each phase
is now followed by listing the table on Azurite."""

from __future__ import annotations

import pytest

from bench.member_writes import CountedTable, batched, checked
from devhost.azurite import AzuriteEndpoints

MEMBERS = {"group-a": [f"user-{n}" for n in range(150)], "group-b": ["user-1", "user-2"]}


def test_the_batched_way_writes_and_deletes_every_row(azurite: AzuriteEndpoints) -> None:
    table = CountedTable(azurite.connection_string)

    join, leave = batched(table, MEMBERS)

    assert join[0] == 3  # 150 rows: two transactions; 2 rows: one
    assert leave[0] == 3
    assert table.rows() == 0


def test_a_join_that_wrote_nothing_is_not_timed_as_a_pass(azurite: AzuriteEndpoints) -> None:
    table = CountedTable(azurite.connection_string)

    with pytest.raises(SystemExit, match="join wrote 0 rows of 152"):
        checked(table, lambda: None, lambda: None, 152)


def test_a_leave_that_left_rows_is_not_timed_as_a_pass(azurite: AzuriteEndpoints) -> None:
    table = CountedTable(azurite.connection_string)

    def join() -> None:
        for user in MEMBERS["group-b"]:
            table.table.upsert("group-b", user, {})

    with pytest.raises(SystemExit, match="leave left 2 rows of 2"):
        checked(table, join, lambda: None, 2)
