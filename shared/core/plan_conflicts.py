"""Conflicting service plans: the rows of the table Microsoft's documentation gives, and which
of them explain a user's `MutuallyExclusiveViolation`.

The table is data handed in (`shared.catalog.plan_conflicts` reads it from
`shared/data/plan-conflicts.csv`). A row is `active` while Microsoft keeps the pair apart, or
lifted: Exchange Online Plan 1 and Plan 2 may now be held together, and Microsoft says to
reprocess a conflict between them that lingers. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlanConflict:
    """Two service plans that cannot be held by one user (ids lower case), and where it is said.

    `active` is False for a pair Microsoft has since lifted: not predicted; an error of it that
    lingers is to be reprocessed.
    """

    plan_a: str
    plan_b: str
    name_a: str
    name_b: str
    source: str
    active: bool = True


def conflicting_rows(
    table: Iterable[PlanConflict], failing: Collection[str], held: Collection[str]
) -> tuple[PlanConflict, ...]:
    """The rows pairing a plan of the failing path with a plan the user holds elsewhere."""
    failing = {p.lower() for p in failing}
    held = {p.lower() for p in held}
    return tuple(
        row
        for row in table
        if (row.plan_a in failing and row.plan_b in held)
        or (row.plan_b in failing and row.plan_a in held)
    )


def lifted_only(rows: Collection[PlanConflict]) -> tuple[PlanConflict, ...]:
    """The `conflicting_rows` when every one is lifted; () when an active row (a conflict that
    still holds) or no row explains the error."""
    return () if any(row.active for row in rows) else tuple(rows)
