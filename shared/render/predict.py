"""How the what-if shows predicted assignment errors and seat needs (table lines and JSON)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from shared.core.findings import SEVERITY_ORDER
from shared.core.predict import PredictedError, Predictions, SeatNeed


def seat_need_text(need: SeatNeed, product: str) -> str:
    text = f"  {product}: {need.needed} user(s) would newly need a seat, {need.free} free"
    return text + (f", SHORT {need.short}: CountViolation" if need.short else "")


def predicted_lines(predictions: Predictions, product: Callable[[str], str]) -> list[str]:
    """The summary: predicted errors by code and product, then the seat needs."""
    if not predictions.errors and not predictions.seats:
        return []
    counts = Counter((e.severity, e.code, e.sku_id) for e in predictions.errors)
    users = len({e.user_id for e in predictions.errors if e.severity == "error"})
    lines = [f"PREDICTED ERRORS ({users} user(s) would get an assignment error)"]
    for (severity, code, sku_id), count in sorted(
        counts.items(), key=lambda item: (SEVERITY_ORDER.get(item[0][0], 3), -item[1], item[0][1])
    ):
        lines.append(f"  {severity.upper():7} {code} on {product(sku_id)}: {count} user(s)")
    if predictions.seats:
        lines.append("  Seats for users who would newly hold a product:")
        lines += ["  " + seat_need_text(n, product(n.sku_id)) for n in predictions.seats]
    return lines


def user_predicted_lines(errors: Sequence[PredictedError], indent: str) -> list[str]:
    return [
        f"{indent}{e.severity.upper():7} predicted {e.code}: {e.message} (source: {e.source})"
        for e in errors
    ]


def predicted_json(error: PredictedError) -> dict[str, Any]:
    return {
        "code": error.code,
        "severity": error.severity,
        "skuId": error.sku_id,
        "groupId": error.group_id,
        "message": error.message,
        "source": error.source,
    }


def seat_need_json(need: SeatNeed, part: str) -> dict[str, Any]:
    return {
        "skuId": need.sku_id,
        "skuPartNumber": part,
        "seatsNeeded": need.needed,
        "seatsFree": need.free,
        "short": need.short,
    }
