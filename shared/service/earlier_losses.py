"""Data losses a version before this one recorded without a recent-loss row (it kept none:
`dataloss.RECENT_LOSSES_PK` came after 2026-12-02): noted once, so the immediate alert still
owed for them goes out after an upgrade in place (`dataloss.alert_data_loss_owed`) instead of
waiting for the digest."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Final

from shared.core.dataloss import DATA_LOSS_RISK
from shared.ports.tables import AlreadyExists
from shared.service.alerts.ledger import ledger_row
from shared.service.alerts.summaries import baseline_pending
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ServiceState

NOTED: Final = "recentlosses-kept"
"""`servicestate` record: the losses are noted as they are found (written once the ledger's
earlier ones are noted)."""


async def note_earlier_losses(svc: Services, *, partition: str, window: timedelta) -> None:
    """Note in `partition` (user id -> when, UPN) the users with an open data-loss finding
    first seen within `window`, with their UPNs read from Graph: one ledger read, the first
    time the tenant-alerts timer runs a version that keeps the rows, never again. Only the
    findings no alert reported (those an earlier version owes), and not while the baseline runs:
    its findings are no alert's (a fresh install's first runs are one)."""
    state = ServiceState(svc.tables.servicestate)
    if state.get(NOTED) is not None or baseline_pending(svc):
        return
    now = svc.now()
    rows = [
        row
        for row in map(
            ledger_row, FindingsLedger(svc.tables.findings).open_by_code([DATA_LOSS_RISK])
        )
        if row.user_id and not row.alerted_in and now - row.first_seen <= window
    ]
    ids = sorted({r.user_id for r in rows if r.user_id})
    users = await svc.directory.users_by_id(ids) if ids else {}
    for row in rows:
        upn = str((users.get(row.user_id or "") or {}).get("userPrincipalName") or "")
        with contextlib.suppress(AlreadyExists):  # noted by this version: that stands
            svc.tables.servicestate.insert(
                partition, row.user_id or "", {"at": row.first_seen, "upn": upn}
            )
    with contextlib.suppress(AlreadyExists):
        state.insert(NOTED, {"at": now})
