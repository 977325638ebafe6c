"""The findings about a direct assignment that group paths cover: DirectOnlyPlans (removing
it would lose plans only it grants) and RedundantDirectAssignment (fully covered: a removal
candidate, safe once every covering path is active without errors, else why not yet).

The coverage is `direct_coverage`'s, shared with the migration plan; `WAIT` is the wording the
migration report uses too. Pure: no I/O, no clock.
"""

from __future__ import annotations

from shared.core.direct_coverage import DirectCoverage, unready_paths
from shared.core.findings import (
    ADMIN_CENTER_LICENSES,
    DIRECT_ONLY_PLANS,
    INFO,
    REDUNDANT_DIRECT_ASSIGNMENT,
    Finding,
    Names,
    user_finding,
)
from shared.core.model import User


def coverage_finding(user: User, coverage: DirectCoverage, names: Names) -> Finding:
    """DirectOnlyPlans or RedundantDirectAssignment for a direct assignment group paths cover."""
    product = names.product(coverage.sku_id)
    groups = ", ".join(names.group(g) for g in coverage.group_ids)
    if coverage.direct_only:
        lost = names.plans(coverage.sku_id, coverage.direct_only)
        return user_finding(
            DIRECT_ONLY_PLANS,
            INFO,
            user,
            coverage.sku_id,
            message=(
                f"{user.display_name} holds {product} directly and through {groups}; removing "
                f"the direct assignment would lose {len(lost)} plan(s) only it grants: "
                f"{', '.join(lost)}."
            ),
            remedy=(
                f"Keep the direct assignment, or first enable those plans in the {product} that "
                + " or ".join(names.group(g) for g in coverage.group_ids)
                + f" assigns ({ADMIN_CENTER_LICENSES}: every member of the group gets them), "
                "or add the user to a licensing group that enables them."
            ),
            plans=lost,
        )
    safe = coverage.safe
    verdict, remedy = (
        (
            "safe to remove: every covering group path is active without errors",
            "Remove direct assignments gradually, a small batch first, and check the users "
            f"keep their services ({ADMIN_CENTER_LICENSES}).",
        )
        if safe
        else _not_yet(user, coverage, names)
    )
    return user_finding(
        REDUNDANT_DIRECT_ASSIGNMENT,
        INFO,
        user,
        coverage.sku_id,
        message=(
            f"{user.display_name}'s direct {product} is fully covered by {groups} (one seat "
            f"either way); removal candidate, {verdict}."
        ),
        remedy=remedy,
        safe=safe,
    )


WAIT = "wait for the group's processing, then check again"


def _not_yet(user: User, coverage: DirectCoverage, names: Names) -> tuple[str, str]:
    """Why the covering group paths are not healthy yet, and the remedy: mid-migration mostly
    a path Entra has not processed yet (to wait for, not to fix), else the path's error."""
    reasons, waits, errors = [], False, False
    for path in unready_paths(user, coverage.sku_id, coverage.unhealthy_group_ids):
        group = names.group(path.group_id)
        if path.error:
            reasons.append(f"{group} is in error ({path.error}): fix that first")
        elif path.state is None:
            reasons.append(f"Entra has not applied {group} to {user.display_name} yet: {WAIT}")
        elif path.state != "Active":
            reasons.append(f"{group}'s path is {path.state}: {WAIT}")
        else:
            reasons.append(f"{group} still disables plans the group now enables: {WAIT}")
        errors, waits = errors or bool(path.error), waits or not path.error
    remedy = []
    if errors:
        remedy.append("Fix the group path's error first (its own finding says how).")
    if waits:
        remedy.append(
            ("Then wait" if errors else "Wait")
            + f" for Entra to process the group ({ADMIN_CENTER_LICENSES} > the product > "
            "Groups shows its processing status); if the path is still not active once it "
            "shows 'ProcessingComplete', reprocess the user."
        )
    remedy.append(
        "Do not remove the direct assignment until every covering group path is active "
        "without errors."
    )
    return "not safe yet: " + "; ".join(reasons), " ".join(remedy)
