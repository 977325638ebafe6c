"""The what-if's seat forecast (`shared.core.predict`): the seats a change can give, and what
to say to the users it would leave without one (`CountViolation`).

Free seats are enabled less consumed, less the users Graph shows no assignment of a product yet
who still want it after the change (pending: Entra gives them the free seats first). When the
change needs more, the remedy lists renewing the seats in warning, reactivating the suspended
ones, then buying (`shared.core.seat_remedy`), counting only the lapsed seats that would come
back free.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.core.evaluate import Evaluation
from shared.core.findings import COUNT_VIOLATION
from shared.core.model import PrepaidUnits, Sku, Tenant, seat_shortfall
from shared.core.seat_remedy import seat_steps, sentence


@dataclass(frozen=True, slots=True)
class SeatNeed:
    """Users who would newly hold a product, against its free seats now (less those members
    still pending take); not those a certain error of their new group fails (they take none)."""

    sku_id: str
    needed: int
    free: int

    @property
    def short(self) -> int:
        return seat_shortfall(self.needed, self.free)


def free_seats(tenant: Tenant, before: Evaluation, after: Evaluation) -> dict[str, int]:
    """Per SKU, the seats a change can give: enabled - consumed, less the users Graph shows no
    assignment of it yet (pending: Entra gives them the free seats first) who still want it
    after the change."""
    return free_after_waiting(tenant, waiting_users(before, after))


def free_after_waiting(tenant: Tenant, waiting: Mapping[str, int]) -> dict[str, int]:
    """Per SKU, enabled - consumed - `waiting`, never below 0."""
    return {s.id: max(0, seat_balance(s, waiting)) for s in tenant.skus.values()}


def waiting_users(before: Evaluation, after: Evaluation) -> Counter[str]:
    """Per SKU, the users Graph shows no assignment of it yet who still want it after."""
    pending = {
        (r.user.id, lic.sku_id)
        for r in before.users
        for lic in r.licenses
        if lic.sku_id not in {s.sku_id for s in r.user.states}
    }
    return Counter(
        lic.sku_id for r in after.users for lic in r.licenses if (r.user.id, lic.sku_id) in pending
    )


def seat_balance(sku: Sku, waiting: Mapping[str, int]) -> int:
    """Enabled seats less those consumed and awaited: below 0 when users hold seats in
    warning or suspended (consumedUnits counts every assigned unit)."""
    return sku.prepaid.enabled - sku.consumed - waiting.get(sku.id, 0)


def lapsed_seats_free(sku: Sku, balance: int) -> PrepaidUnits:
    """`sku.prepaid` with only the seats in warning and suspended that renewing or
    reactivating would give back free: not those users hold or await (`balance` below 0),
    which take the seats in warning first (Partner Center: available units = active + warning
    - consumed)."""
    over = max(0, -balance)
    warning = max(0, sku.prepaid.warning - over)
    suspended = max(0, sku.prepaid.suspended - max(0, over - sku.prepaid.warning))
    return replace(sku.prepaid, warning=warning, suspended=suspended)


def count_message(need: SeatNeed, units: PrepaidUnits, product: str, display_name: str) -> str:
    """The predicted `CountViolation` of one user, with the seat steps that would avoid it."""
    return (
        _count_head(need, product, display_name)
        + " "
        + ". ".join(map(sentence, seat_steps(units, product, need.short)))
        + " before the change, or free seats."
    )


def _count_head(need: SeatNeed, product: str, display_name: str) -> str:
    """Who would get CountViolation: every user when no seat is free, else `short` of them,
    Entra choosing which."""
    if not need.free:
        if need.needed == 1:
            return (
                f"{display_name} would newly need {product} and no seat of it is free: Entra "
                f"would record {COUNT_VIOLATION}."
            )
        return (
            f"{need.needed} users would newly need {product} and no seat of it is free: each "
            f"would get {COUNT_VIOLATION}; {display_name} is one of them."
        )
    seats = "1 seat is" if need.free == 1 else f"{need.free} seats are"
    return (
        f"{need.needed} users would newly need {product} but only {seats} free: {need.short} "
        f"of them would get {COUNT_VIOLATION} (Entra does not say which); {display_name} is "
        f"one of the {need.needed}."
    )
