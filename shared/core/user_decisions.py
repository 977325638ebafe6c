"""The user pipeline's "decide" step, pure: from findings, ledgers and seats to a reprocess plan.

The recompute queue, the nightly scan's pages and the dry run all decide here, so the rules
that turn findings into reprocesses live once: a seat promised to a queued CountViolation
reprocess is not free yet (Graph's `consumedUnits` does not show it), and that user's
CountViolation is already being handled, so it is decided neither again. Seats count as
promised tenant-wide: a decision over some users also counts those promised to everyone else
(`promised_elsewhere`), or recompute messages deciding one after another would each hand out
the same free seats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from shared.core.findings import COUNT_VIOLATION, Finding
from shared.core.model import Tenant
from shared.core.reprocess import (
    Attempt,
    Cause,
    ReprocessNow,
    ReprocessPlan,
    TenantFacts,
    decide_reprocess,
)


def promised_seats(decision: ReprocessNow) -> set[str]:
    """The SKUs whose seat this reprocess promises: those of its CountViolation causes."""
    return {c.sku_id for c in decision.causes if c.code == COUNT_VIOLATION and c.sku_id}


def cause_key(finding: Finding) -> str:
    """The key of the reprocess cause a finding stands for (`Cause.key`, evidence aside)."""
    return Cause(finding.code, finding.sku_id, finding.group_id).key


def unused_seats(tenant: Tenant) -> dict[str, int]:
    """Seats per SKU neither consumed nor promised: enabled - consumed (Graph's counts)."""
    return {s.id: s.prepaid.enabled - s.consumed for s in tenant.skus.values()}


def decide_users(
    tenant: Tenant,
    findings: Iterable[Finding],
    history: Mapping[str, Sequence[Attempt]],
    in_flight: Mapping[str, Collection[str]],
    *,
    now: datetime,
    processing: Mapping[str, str | None],
    promised_elsewhere: Mapping[str, int] | None = None,
    failing_elsewhere: Mapping[str, int] | None = None,
) -> ReprocessPlan:
    """The reprocess policy over these findings.

    `history` and `in_flight` (SKUs with a CountViolation reprocess queued or being called)
    are per user, from the reprocess ledger; `processing` the groups' license-processing
    states; `promised_elsewhere` seats already promised per SKU to reprocesses queued for
    users outside these (in flight tenant-wide, and queued by the run so far: other recompute
    messages, the scan's other pages); `failing_elsewhere` users counted
    toward a mass failure there (`TenantFacts.failing_elsewhere`)."""
    promised = Counter(sku for skus in in_flight.values() for sku in skus)
    promised.update(promised_elsewhere or {})
    facts = TenantFacts(
        now=now,
        free_seats={sku: n - promised[sku] for sku, n in unused_seats(tenant).items()},
        group_processing=processing,
        failing_elsewhere=failing_elsewhere or {},
        prepaid={s.id: s.prepaid for s in tenant.skus.values()},
    )
    undecided = [
        f
        for f in findings
        if not (f.code == COUNT_VIOLATION and f.sku_id in in_flight.get(f.user_id or "", ()))
    ]
    return decide_reprocess(undecided, history, facts)
