"""The table of conflicting service plans, read from `shared/data/plan-conflicts.csv`.

Each row names two service plans that one user cannot hold together (Entra records
`MutuallyExclusiveViolation`), the page of Microsoft's documentation that says so, and whether
the conflict still holds (`active`) or was lifted (`lifted`: Microsoft says to reprocess an
error of the pair that lingers). The core's evaluation and predictions take the rows as input;
this module only reads and checks the file.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

from shared.core.plan_conflicts import PlanConflict

PLAN_CONFLICTS_CSV = Path(__file__).parent.parent / "data" / "plan-conflicts.csv"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_STATUSES = {"active": True, "lifted": False}


class PlanConflictsError(ValueError):
    """The conflicts table is malformed; the message names the row."""


def read_plan_conflicts(path: Path = PLAN_CONFLICTS_CSV) -> tuple[PlanConflict, ...]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise PlanConflictsError(f"{path}: cannot read the plan conflicts ({exc})") from None
    table = []
    for number, row in enumerate(rows, start=2):
        ids = [(row.get(k) or "").strip().lower() for k in ("planAId", "planBId")]
        status = (row.get("status") or "").strip()
        source = (row.get("source") or "").strip()
        if not all(_GUID.match(i) for i in ids):
            raise PlanConflictsError(f"{path}: row {number}: planAId and planBId must be GUIDs")
        if status not in _STATUSES or not source.startswith("https://"):
            raise PlanConflictsError(
                f"{path}: row {number}: status must be active or lifted, source an https URL"
            )
        table.append(
            PlanConflict(
                ids[0],
                ids[1],
                (row.get("planA") or ids[0]).strip(),
                (row.get("planB") or ids[1]).strip(),
                source,
                _STATUSES[status],
            )
        )
    return tuple(table)


@cache
def plan_conflicts() -> tuple[PlanConflict, ...]:
    """The bundled table, loaded on first use."""
    return read_plan_conflicts()
