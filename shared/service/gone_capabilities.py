"""The data-loss guard's capability records, and the reprocess ledger, of users gone from the
tenant.

A deleted user's record (`servicestate`, partition `capabilities`) is removed when the service
learns the user is gone (the recompute's users Graph no longer knows, the nightly scan's users
with open findings it did not see, and at the scan's finish any user with a record whom no page
held and Graph no longer knows: `shared.service.reconcile.unseen_records`).
Choice: what the user *held* is dropped at once (a user
restored from the recycle bin gets their licenses back and is recorded anew), but a loss still
within its kept period (`LOSS_OPEN_FOR`: 30 days for a mailbox) is kept, marked `gone`, until
its time is up: a user restored within it finds their `DataLossRisk` again with the deadline it
had, not a fresh one, and not missed. The user's findings resolve as for any gone user. The
marked records are listed in partition `capabilitiesgone` (written first, so a crash leaves
the index row and the record, never a marked record nobody sweeps); the nightly scan's finish
deletes those whose losses are over (`prune_gone_capabilities`), and drops the index row of a
user restored meanwhile (their record was rewritten without the mark).

The user's reprocess ledger (`reprocessledger`, their partition) goes at the same moments
(`forget_gone_ledger`): its history only paces reprocesses of a user who is there; a user
restored later is decided afresh (at worst one more reprocess, which changes nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from shared.ports.tables import ConcurrencyConflict, json_field, parse_json_field
from shared.service.dataloss import CAPABILITIES_PK, kept_losses
from shared.service.services import Services
from shared.service.stores.contention import write_contended
from shared.service.stores.read_times import READ_AT, written_after
from shared.service.stores.reprocess_ledger import ReprocessLedger

GONE_CAPABILITIES_PK: Final = "capabilitiesgone"
GONE: Final = "gone"


def forget_gone_user(svc: Services, user_id: str, read_at: datetime | None = None) -> None:
    """Remove a gone user's capability record, or keep only its losses still open, marked
    `gone` (module docstring). A record written from a later read of Graph than `read_at` (the
    user was restored and read since) stands as it is."""
    table, now = svc.tables.servicestate, svc.now()

    def attempt() -> None:
        stored = table.get(CAPABILITIES_PK, user_id)
        if stored is None or written_after(stored, read_at):
            return
        record = parse_json_field(str(stored.fields["json"]))
        kept = kept_losses(record.get("lost") or {}, now)
        if not kept:
            table.delete(CAPABILITIES_PK, user_id, etag=stored.etag)
            return
        new_record = {"held": {}, "lost": kept, GONE: record.get(GONE) or now.isoformat()}
        if new_record == record:
            return
        table.upsert(GONE_CAPABILITIES_PK, user_id, {"at": now})  # before the mark: swept
        fields = {"json": json_field(new_record), READ_AT: read_at or stored.fields.get(READ_AT)}
        table.update(CAPABILITIES_PK, user_id, fields, etag=stored.etag)

    write_contended(attempt)


def forget_gone_ledger(svc: Services, user_id: str, read_at: datetime | None = None) -> int:
    """Delete a gone user's reprocess ledger rows written no later than `read_at` (when Graph
    was found not to know them; None: now); returns how many went."""
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    return ledger.forget(user_id, before=read_at or svc.now())


def prune_gone_capabilities(svc: Services) -> int:
    """Delete the records of gone users whose kept losses are over; drop the index rows of
    users whose record is gone or no longer marked (restored). Returns records deleted."""
    table, now, deleted = svc.tables.servicestate, svc.now(), 0
    for row in table.query(GONE_CAPABILITIES_PK):

        def attempt(user_id: str = row.row_key) -> str:
            stored = table.get(CAPABILITIES_PK, user_id)
            if stored is None:
                return "absent"
            record = parse_json_field(str(stored.fields["json"]))
            if not record.get(GONE):
                return "restored"  # the recompute rewrote it without the mark
            if kept_losses(record.get("lost") or {}, now):
                return "open"
            table.delete(CAPABILITIES_PK, user_id, etag=stored.etag)
            return "deleted"

        verdict = write_contended(attempt)
        if verdict == "open":
            continue
        deleted += verdict == "deleted"
        try:
            table.delete(GONE_CAPABILITIES_PK, row.row_key, etag=row.etag)
        except ConcurrencyConflict:
            continue  # marked again meanwhile: the next night looks again
    return deleted
