"""Findings about one SKU: a seat forecast (shortfall) and the subscription's health.

A shortfall is reported before it turns into CountViolation errors. Pure: no I/O, no clock.
"""

from __future__ import annotations

from shared.core.findings import (
    SEAT_SHORTFALL,
    SUBSCRIPTION_AT_RISK,
    WARNING,
    Finding,
    Names,
)
from shared.core.model import Sku, seat_shortfall
from shared.core.seat_remedy import YOUR_PRODUCTS, seat_steps, sentence
from shared.core.wording import counted

LAPSING_STATUSES = frozenset({"Warning", "Suspended", "LockedOut", "Deleted"})
"""subscribedSku.capabilityStatus past Enabled, in the order a subscription not renewed goes
through them; Deleted may remove data
(https://learn.microsoft.com/en-us/graph/api/resources/subscribedsku)."""


def _sku_finding(sku: Sku, code: str, message: str, remedy: str) -> Finding:
    return Finding(code, WARNING, f"sku:{sku.id}", sku.id, None, message, remedy)


def sku_findings(sku: Sku, demand: int, names: Names) -> list[Finding]:
    """Seat forecast and subscription health for one SKU."""
    findings = []
    product = names.product(sku.id)
    shortfall = seat_shortfall(demand, sku.prepaid.enabled)
    if shortfall:
        units = sku.prepaid
        lapsed = (
            f"; {units.warning} in warning, {units.suspended} suspended, {units.locked_out} "
            "locked out"
            if units.warning or units.suspended or units.locked_out
            else ""
        )
        findings.append(
            _sku_finding(
                sku,
                SEAT_SHORTFALL,
                f"{counted(demand, 'user')} should hold {product} but only "
                f"{counted(units.enabled, 'seat')} {'is' if units.enabled == 1 else 'are'} "
                f"enabled ({sku.consumed} consumed{lapsed}): "
                + _left_out(shortfall, sku)
                + " Which users Entra leaves out is not documented.",
                _shortfall_remedy(sku, shortfall, product),
            )
        )
    at_risk = sku.prepaid.warning + sku.prepaid.suspended + sku.prepaid.locked_out
    lapsing = sku.capability_status in LAPSING_STATUSES
    if (at_risk or lapsing) and (sku.consumed or demand):
        status = f" (subscription status {sku.capability_status})" if lapsing else ""
        in_use = f"in use by {counted(max(sku.consumed, demand), 'user')}"
        # a status past Enabled with no lapsed units left (a deleted subscription keeps none)
        # is said as it is, not as "seats in warning (0), suspended (0)..."
        state = (
            f"has seats in warning ({sku.prepaid.warning}), suspended ({sku.prepaid.suspended}) "
            f"or locked-out ({sku.prepaid.locked_out}) state while {in_use}"
            if at_risk
            else f"is {in_use}"
        )
        findings.append(
            _sku_finding(
                sku,
                SUBSCRIPTION_AT_RISK,
                f"{product}{status} {state}: services stop, and data is eventually deleted, if "
                "the subscription is not renewed.",
                f"Renew or reactivate the subscription ({YOUR_PRODUCTS}), or move users to "
                "another product before it lapses.",
            )
        )
    return findings


def _left_out(shortfall: int, sku: Sku) -> str:
    """Who the shortfall leaves without an enabled seat. Users already holding seats past the
    enabled ones (consumed above enabled: seats in warning, suspended or locked out) keep
    their license, not a CountViolation, while the subscription lapses (SubscriptionAtRisk);
    consumedUnits also counts holders Entra is about to remove, so only "up to"."""
    held = min(shortfall, max(0, sku.consumed - sku.prepaid.enabled))
    if not held:
        return f"{shortfall} user(s) will be left with CountViolation errors."
    return (
        f"{shortfall} user(s) are left without an enabled seat: up to {held} of them hold "
        "lapsed seats now (they keep the license, not a CountViolation, while the "
        "subscription can be renewed or reactivated)"
        + ("." if held == shortfall else ", the others will get CountViolation errors.")
    )


def _shortfall_remedy(sku: Sku, shortfall: int, product: str) -> str:
    """Renew and reactivate before buying (`seat_steps`)."""
    steps = seat_steps(sku.prepaid, product, shortfall)
    return ". ".join(map(sentence, steps)) + " or remove users from its licensing groups."
