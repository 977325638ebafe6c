"""What gives a product the seats it lacks: renew, reactivate, then buy.

Seats in `warning` (a subscription past its end date, in its grace period) come back by
renewing it, `suspended` ones (cancelled, not yet deleted) by reactivating it; `lockedOut`
seats cannot be assigned (licenseUnitsDetail), so the rest is bought. SeatShortfall, the
CountViolation finding and the reprocess policy's alerts all say it in these words. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.findings import ADMIN_CENTER_LICENSES
from shared.core.model import PrepaidUnits

YOUR_PRODUCTS = "Microsoft 365 admin center > Billing > Your products"
"""Where a subscription is renewed or reactivated."""


def seat_steps(units: PrepaidUnits, product: str, shortfall: int | None = None) -> list[str]:
    """The steps (each starting in lower case) that give `product` `shortfall` more seats;
    None: a number not known (a user waiting for a seat), so every lapsed seat is named and
    buying comes last, if those are not enough."""
    known = shortfall is not None
    need = shortfall if shortfall is not None else units.warning + units.suspended
    renew = min(need, units.warning)
    reactivate = min(need - renew, units.suspended)
    buy = need - renew - reactivate
    steps = []
    if renew and known:
        steps.append(
            f"renew the expired subscription of {product}: {renew} of its "
            f"{units.warning} seat(s) in the grace period (warning) cover "
            + ("the shortfall" if renew == shortfall else "part of the shortfall")
            + f" ({YOUR_PRODUCTS})"
        )
    elif renew:
        steps.append(
            f"renew the expired subscription of {product}: its {renew} seat(s) in the grace "
            f"period (warning) come back ({YOUR_PRODUCTS})"
        )
    if reactivate and known:
        steps.append(
            f"reactivate the cancelled subscription of {product}: {reactivate} of its "
            f"{units.suspended} suspended seat(s) cover "
            + ("the shortfall" if not buy and not renew else "the rest" if not buy else "part")
            + f", until they are deleted ({YOUR_PRODUCTS})"
        )
    elif reactivate:
        steps.append(
            f"reactivate the cancelled subscription of {product}: its {reactivate} suspended "
            f"seat(s) come back, until they are deleted ({YOUR_PRODUCTS})"
        )
    if buy:
        steps.append(
            f"buy {buy} more seat(s) of {product} ({ADMIN_CENTER_LICENSES})"
            + (" for the rest" if steps else "")
        )
    elif not known:
        steps.append(
            f"buy or free seats of {product} ({ADMIN_CENTER_LICENSES})"
            + (" if those are not enough" if steps else "")
        )
    return steps


def seats_fix(products: Iterable[tuple[PrepaidUnits, str]]) -> str:
    """The steps for each product a user waits for a seat of, in one sentence (lower case)."""
    return "; ".join(step for units, product in products for step in seat_steps(units, product))


def sentence(text: str) -> str:
    """`text` with its first letter in upper case."""
    return text[:1].upper() + text[1:]
