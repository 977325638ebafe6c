"""How many findings of the tenant are open, by severity, as the digest counts them: open and
alertable now (the digest's new plus its "still open and already reported"; muted, weekly and
not-yet-alertable findings are not). The generic webhook's `counts.open` is this total at or
above the channel's minSeverity, whatever the payload lists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from shared.core.alerting import ALERT, DigestPlan, classify
from shared.service.alerts.facts import alert_facts
from shared.service.alerts.ledger import ledger
from shared.service.services import Services


def plan_open_counts(plan: DigestPlan) -> Counter[str]:
    """The digest's own open count (`DigestPlan.open_total`), by severity."""
    return Counter(r.severity for r in plan.new) + plan.still_open


async def tenant_open_counts(svc: Services, listed: Iterable[str] = ()) -> Counter[str]:
    """The open count a digest would show now, by severity; the open findings whose keys are in
    `listed` (what an immediate alert reports, maybe before they are alertable) count too."""
    keys = set(listed)
    rows = [r for _, r in ledger(svc)]
    facts = await alert_facts(svc, rows)
    return Counter(
        r.severity
        for r in rows
        if r.is_open and (r.key in keys or classify(r, facts).kind == ALERT)
    )
