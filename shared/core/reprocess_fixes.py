"""What a person must fix when the reprocess policy alerts instead of reprocessing.

A code a reprocess alone never fixes (`FIX_FIRST`), missing seats (renew, reactivate, then buy:
`seat_remedy`), a usage location or a plan conflict (`human_fix`). The policy writes SKU and
group ids: the core knows no names. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from shared.core import findings as codes
from shared.core.findings import Finding
from shared.core.model import PrepaidUnits
from shared.core.reprocess_plan import Cause, TenantFacts
from shared.core.seat_remedy import seats_fix

FIX_FIRST = MappingProxyType(
    {
        codes.UNIQUENESS_VIOLATION: (
            "fix the duplicate proxy address first (another object already uses it), then "
            "reprocess the user: a reprocess alone fails the same way"
        ),
        codes.DEPENDENCY_VIOLATION: (
            "give the user the required plan through another path, or disable the dependent "
            "plans, first: a reprocess alone cannot remove a license other plans depend on"
        ),
        codes.OTHER: (
            "find the reason in the audit log ('Change user license') and fix it first: "
            "a reprocess alone does not fix an unclassified error"
        ),
    }
)


def seats_fix_of(skus: Iterable[tuple[str, str]], facts: TenantFacts) -> str:
    """What gives each SKU the seats it lacks, as (SKU id, how to call it) (`seats_fix`)."""
    return seats_fix((facts.prepaid.get(s, PrepaidUnits()), label) for s, label in skus)


def human_fix(cause: Cause, finding: Finding) -> str:
    """What a person must do about a usage location or a plan conflict: named for the group's
    product at fault when the finding's product only failed with it (`findings.failed_with`)."""
    at_fault = codes.failed_with(finding)
    culprit = ", ".join(at_fault) or cause.sku_id
    with_it = f" ({cause.sku_id} fails with it: all-or-none)" if at_fault else ""
    if cause.code == codes.PROHIBITED_IN_USAGE_LOCATION:
        return (
            f"usage location ({', '.join(cause.evidence) or 'unknown'}) does not allow "
            f"{culprit}{with_it}: correct the usage location or remove the user from group "
            f"{cause.group_id}"
        )
    return (
        f"a plan of {culprit} conflicts with the user's other licenses "
        f"({', '.join(cause.evidence) or 'none active'}){with_it}: decide which license wins; "
        "during a planned swap it clears when the user leaves the old group"
    )
