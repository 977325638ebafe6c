"""The nightly finish's retention of the history tables, after the run is done.

* Findings (`findings`): resolved ones older than `FINDINGS_RETENTION_DAYS` go, unless a digest
  still owes their resolution (`FindingsLedger.prune_resolved`).
* Reprocess ledger (`reprocessledger`): a cause of a user none of whose rows was written for
  as long, and of which the user has no open finding, loses its rows (`prune_quiet`): the
  policy reads a cause's rows only while its finding is open, and its recent ones at that; a
  cause back after months of quiet is a new incident (its first attempt again, its backoff
  from the start). Gone users' rows go sooner (`gone_capabilities.forget_gone_ledger`).

Each delete is over the row as read (ETag): a row written meanwhile stands. A crash part-way
leaves the rest to the next night.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import structlog

from shared.service.services import Services
from shared.service.stores import FindingsLedger, ReprocessLedger

log = structlog.get_logger(__name__)


def prune_history(svc: Services, run_id: str) -> None:
    """Findings and reprocess-ledger rows past their retention (module docstring)."""
    now, keep = svc.now(), timedelta(days=svc.settings.findings_retention_days)
    findings = FindingsLedger(svc.tables.findings)
    pruned = findings.prune_resolved(now, keep)
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    rows = 0
    for user_id in sorted(ledger.users_written_before(now - keep)):
        open_causes = {_cause_key(e.fields) for e in findings.open_findings(user_id).values()}
        rows += ledger.prune_quiet(user_id, now - keep, open_causes=open_causes)
    if pruned or rows:
        log.info("reconcile.history_pruned", run_id=run_id, findings=pruned, ledger_rows=rows)


def _cause_key(fields: Mapping[str, object]) -> str:
    """The reprocess cause key (`Cause.key`) an open finding's row stands for."""
    code, sku, group = (fields.get(name) for name in ("code", "skuId", "groupId"))
    return f"{code}|{sku or '-'}|{group or '-'}"
