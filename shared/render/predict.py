"""How the what-if shows predicted assignment errors and seat needs (table lines and JSON)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.core.findings import COUNT_VIOLATION, ERROR, SEVERITY_ORDER
from shared.core.predict import PredictedError, Predictions
from shared.core.predict_seats import SeatNeed


def seat_need_text(need: SeatNeed, product: str) -> str:
    text = f"  {product}: {need.needed} user(s) would newly need a seat, {need.free} free"
    return text + (f", SHORT {need.short}: CountViolation" if need.short else "")


def predicted_lines(predictions: Predictions, product: Callable[[str], str]) -> list[str]:
    """The summary: predicted errors by code and product, then the seat needs."""
    if not predictions.errors and not predictions.seats:
        return []
    counts = Counter((e.severity, e.code, e.sku_id) for e in predictions.errors)
    # a product short of some seats only: Entra gives the free ones to some of its users
    partial = {n.sku_id: n.short for n in predictions.seats if 0 < n.short < n.needed}
    lines = [f"PREDICTED ERRORS ({_users_in_error(predictions, partial)})"]
    for (severity, code, sku_id), count in sorted(
        counts.items(), key=lambda item: (SEVERITY_ORDER.get(item[0][0], 3), -item[1], item[0][1])
    ):
        some = f"{partial[sku_id]} of " if code == COUNT_VIOLATION and sku_id in partial else ""
        lines.append(f"  {severity.upper():7} {code} on {product(sku_id)}: {some}{count} user(s)")
    if predictions.seats:
        lines.append("  Seats for users who would newly hold a product:")
        lines += ["  " + seat_need_text(n, product(n.sku_id)) for n in predictions.seats]
    return lines


def _users_in_error(predictions: Predictions, partial: Mapping[str, int]) -> str:
    """How many users would get an error: those certain to, then those competing for too few
    seats, of whom Entra fails as many as seats are short: "up to" when that is a bound (several
    products short, whose users may be the same, or a user certain to fail anyway competing)."""
    errors = [e for e in predictions.errors if e.severity == ERROR]
    short_of = {e.user_id for e in errors if e.code == COUNT_VIOLATION and e.sku_id in partial}
    certain = {e.user_id for e in errors if not (e.code == COUNT_VIOLATION and e.sku_id in partial)}
    competing = short_of - certain
    text = f"{len(certain)} user(s) would get an assignment error"
    if not competing:
        return text
    failing = min(len(competing), sum(partial.values()))
    exact = len(partial) == 1 and not short_of & certain  # else who takes the seats varies
    some = f"{'' if exact else 'up to '}{failing} of {len(competing)}"
    if certain:
        return f"{text}; {some} more for want of a seat: Entra does not say which"
    return (
        f"{some} user(s) would get an assignment error for want of a seat: Entra does not say which"
    )


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
