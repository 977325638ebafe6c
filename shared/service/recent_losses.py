"""The data-loss alert's outbox of recent losses: a `servicestate` row per user who lost a
capability lately (`RECENT_LOSSES_PK`), written by the data-loss guard when it records the loss,
read by the immediate alert (`dataloss.alert_data_loss`, `alert_data_loss_owed`): it reads
these users' findings, not the whole ledger.

A loss that joins others still open (the OneDrive lost, then the mailbox) changes no finding's
key: the user's `DataLossRisk` finding stays the one already alerted. Its row is marked
`AGAIN`, so the alert owes it until an immediate alert carries it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.core.alerting import LedgerRow
from shared.core.dataloss import DATA_LOSS_RISK
from shared.core.model import User
from shared.ports.tables import ConcurrencyConflict, Entity, EntityStore, safe_key
from shared.service.alerts.facts import exclusions
from shared.service.alerts.ledger import ledger_row
from shared.service.services import Services

MASS_WINDOW: Final = timedelta(hours=1)
RECENT_LOSSES_PK: Final = "recentlosses"
"""`servicestate` rows (RowKey: user id) of the users who lost a capability lately, with when
and their UPN: the data-loss alert reads these users' findings, not the whole ledger, and
mutes a user excluded by UPN without asking Graph."""
RECENT_KEPT: Final = MASS_WINDOW + timedelta(minutes=15)
"""A recent-loss row is read this long: the window, and a redelivery that records the finding
a little after the loss (a worker killed in between)."""
AGAIN: Final = "again"
"""Recent-loss field: True when the loss joined others still open (the user's finding was
alerted for those): the alert for this one is owed until an immediate alert carries it."""


def note_loss(table: EntityStore, user: User, now: datetime, *, again: bool) -> None:
    """Note that `user` lost a capability `now` (`again`: beside losses still open)."""
    table.upsert(
        RECENT_LOSSES_PK, user.id, {"at": now, "upn": user.user_principal_name, AGAIN: again}
    )


@dataclass
class RecentLosses:
    """The findings of the losses of the last hour, and the recent-loss rows (by user id) of
    those that joined an already alerted finding and no immediate alert carried yet."""

    pairs: list[tuple[Entity, LedgerRow]]
    again: dict[str, Entity]

    def owed(self) -> list[tuple[Entity, LedgerRow]]:
        """The findings no alert reported yet, or not since the user's latest loss."""
        return [(e, r) for e, r in self.pairs if not r.alerted_in or r.subject in self.again]

    def carried(self, svc: Services, pairs: Iterable[tuple[Entity, LedgerRow]]) -> None:
        """The losses these mailed findings carry are alerted: their `AGAIN` mark goes (unless
        a newer loss rewrote the row meanwhile: that one is still owed)."""
        for _, row in pairs:
            loss = self.again.get(row.subject)
            if loss is None:
                continue
            with contextlib.suppress(ConcurrencyConflict):
                svc.tables.servicestate.update(
                    RECENT_LOSSES_PK, loss.row_key, {**loss.fields, AGAIN: False}, etag=loss.etag
                )


def recent_losses(svc: Services) -> RecentLosses:
    """Open, unmuted `DataLossRisk` findings of users who lost a capability within the last
    hour (the later of the loss, `RECENT_LOSSES_PK`, and the finding's first sighting); users
    excluded by UPN too (the UPN the loss was recorded with)."""
    now = svc.now()
    excluded = exclusions(svc)
    losers = _recent_losers(svc, now)
    upns = {u: str(e.fields.get("upn") or "") for u, e in losers.items()}
    recent = [
        (e, r)
        for user_id, loss in losers.items()
        for e in svc.tables.findings.query(safe_key(user_id))
        for r in (ledger_row(e),)
        if r.code == DATA_LOSS_RISK
        and r.is_open
        and now - max(r.first_seen, _loss_at(loss)) <= MASS_WINDOW
    ]
    pairs = [(e, r) for e, r in recent if not excluded.mutes(r, upns.get(r.user_id or ""))]
    again = {r.subject: losers[r.subject] for _, r in pairs if losers[r.subject].fields.get(AGAIN)}
    return RecentLosses(pairs, again)


def _loss_at(loss: Entity) -> datetime:
    at = loss.fields["at"]
    assert isinstance(at, datetime)  # `_recent_losers` keeps only these
    return at


def _recent_losers(svc: Services, now: datetime) -> dict[str, Entity]:
    """User id -> recent-loss row of the users who lost a capability within `RECENT_KEPT`;
    older rows are dropped (one that changed meanwhile is a new loss: kept). A loss older than
    the hour is the digest's: one no immediate alert carried (`AGAIN`: Graph refused mail all
    along, or the hour's mass-loss alert was sent already) makes its finding news again."""
    table = svc.tables.servicestate
    found: dict[str, Entity] = {}
    for entity in table.query(RECENT_LOSSES_PK):
        at = entity.fields.get("at")
        if isinstance(at, datetime) and now - at <= RECENT_KEPT:
            found[entity.row_key] = entity
            continue
        if entity.fields.get(AGAIN):
            _to_the_digest(svc, entity.row_key)
        with contextlib.suppress(ConcurrencyConflict):
            table.delete(RECENT_LOSSES_PK, entity.row_key, etag=entity.etag)
    return found


def _to_the_digest(svc: Services, user_id: str) -> None:
    """The user's open `DataLossRisk` finding, alerted for an earlier loss, is not alerted for
    the latest: the digest mails it (before the row goes: a crash in between does it again)."""
    findings = svc.tables.findings
    for entity in findings.query(safe_key(user_id)):
        row = ledger_row(entity)
        if row.code == DATA_LOSS_RISK and row.is_open and row.alerted_in:
            with contextlib.suppress(ConcurrencyConflict):  # changed meanwhile: found again
                fields = {**entity.fields, "alertedIn": None}
                findings.update(entity.partition_key, entity.row_key, fields, etag=entity.etag)
