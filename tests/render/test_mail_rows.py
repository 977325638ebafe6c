"""An alert line's user count when the ledger keeps only a sample of a finding's users: two
findings of one line (two groups nested in one licensed group) may share users."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.alerting import LedgerRow, group_rows
from shared.render.mail import MAX_NAMED_USERS, MailNames
from shared.render.mail_rows import resolved_section, row_views
from tests.demo_tenant import E3_BASE

SEEN = datetime(2026, 11, 24, tzinfo=UTC)


def user(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def nested_row(nested: str, user_ids: list[str], user_count: int | None = None) -> LedgerRow:
    """A NestedGroupMember row as the ledger keeps it: the first ids, and the count."""
    return LedgerRow(
        key=f"group:{E3_BASE}|-|NestedGroupMember|{E3_BASE}|{nested}",
        subject=f"group:{E3_BASE}",
        code="NestedGroupMember",
        severity="info",
        sku_id=None,
        group_id=E3_BASE,
        message="m",
        remedy="r",
        first_seen=SEEN,
        user_ids=tuple(user_ids),
        user_count=user_count,
    )


def test_users_of_two_samples_are_not_counted_twice() -> None:
    """Group A: 150 users, the ledger names its first 100; group B: 30 users, all named, who
    are A's last 30 (B is nested in A too). 150 users in all, not 100 + 30 + 50 = 180."""
    a = nested_row("a", [user(n) for n in range(100)], user_count=150)
    b = nested_row("b", [user(n) for n in range(120, 150)])
    [line] = group_rows([a, b])

    assert len(line.user_ids) == 130
    assert line.user_total <= 150  # never more users than there can be
    [view] = row_views([a, b], MailNames())
    assert view.more == line.user_total - MAX_NAMED_USERS
    assert view.more_is_minimum  # who A's 50 unnamed are is unknown: "at least"


def test_a_line_without_shared_samples_counts_exactly() -> None:
    a = nested_row("a", [user(n) for n in range(100)], user_count=150)
    [line] = group_rows([a])
    [view] = row_views([a], MailNames())

    assert line.user_total == 150
    assert view.more == 150 - MAX_NAMED_USERS
    assert not view.more_is_minimum


def loss_row(n: int, seen: datetime) -> LedgerRow:
    """A user's DataLossRisk row, its message naming the deadline as the finding does."""
    return LedgerRow(
        key=f"{user(n)}|-|DataLossRisk|{E3_BASE}",
        subject=user(n),
        code="DataLossRisk",
        severity="error",
        sku_id=None,
        group_id=E3_BASE,
        message=f"User {n} lost Exchange Online: restore it by {seen.date()} (seen {seen})",
        remedy="r",
        first_seen=seen,
    )


def test_a_data_loss_lines_example_is_its_earliest_deadline() -> None:
    """One line for several users' losses shows one message as its example: the user who lost
    access first, whose deadline comes first, not whoever the ledger listed first."""
    later = loss_row(1, datetime(2026, 11, 24, 9, tzinfo=UTC))
    earlier = loss_row(2, datetime(2026, 11, 20, 9, tzinfo=UTC))

    [view] = row_views([later, earlier], MailNames())

    assert view.count == 2
    assert view.example == earlier.message


def test_a_resolved_data_loss_does_not_read_as_restored() -> None:
    """A DataLossRisk also ends when its 30 days ran out: the data is gone then. Listed under
    'Resolved' with nothing more, it read as if the license had come back."""
    loss = loss_row(1, datetime(2026, 10, 24, 9, tzinfo=UTC))
    other = nested_row("g2", [user(2)])

    with_loss = resolved_section([loss, other], MailNames())
    without = resolved_section([other], MailNames())

    [note] = with_loss.paragraphs
    assert "time ran out" in note
    assert "its data is then deleted" in note
    assert "the user was deleted" in note
    assert without.paragraphs == ()
