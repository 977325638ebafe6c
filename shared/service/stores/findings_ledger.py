"""`FindingsLedger`: one entity per open or resolved finding (table `findings`).

PartitionKey is the subject (user id, `group:<id>`, `sku:<id>`), RowKey the finding key; a
finding is open while `resolvedAt` is empty and keeps when it was first seen and what was done
about it (reprocess queued, alerted) while it stays open.

The users a finding names besides its subject (a NestedGroupMember's users left unlicensed:
up to a whole group, 100k and more) do not fit one entity (a string holds 32K characters): the
row keeps how many there are (`userCount`) and the first `STORED_USER_IDS` of them (`userIds`,
JSON), enough for an alert to name some; the reports written from the scan carry them all.
Rows written before `userCount` existed hold every id and read as such.

A user's rows also keep when the data they were written from was read from Graph (`readAt`):
a run that read the user earlier (a slow recompute message; a nightly page, whose memberships
were read when its run started) and writes after a run that read later would otherwise
resolve or overwrite what the later read found (a new DataLossRisk among them) until the
user's next recompute. Such a run writes nothing for the subject: each write is made only over
the row as read (ETag) and only when that row was not written from a later read. Rows without
`readAt` (written before it existed, or by jobs that read nothing, `set_one`) count as older.

Retention: a resolved finding is kept `FINDINGS_RETENTION_DAYS` (90) after it resolved, then
the nightly finish deletes it (`prune_resolved`); one mailed as open whose resolution no digest
has reported yet is kept until one did, at most twice as long. Open findings are never pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from shared.core.findings import Finding, finding_fields
from shared.ports import tables as port
from shared.ports.tables import (
    Entity,
    EntityStore,
    json_field,
    parse_json_field,
    safe_key,
)
from shared.service.stores.contention import WRITE_ATTEMPTS, delete_as_read
from shared.service.stores.read_times import READ_AT, written_after

STORED_USER_IDS: Final = 100
"""At most this many user ids in a row's `userIds` (100 GUIDs: about 4K characters)."""
"""Writes of a row over the row as read before a run gives up (`_write_over`)."""


@dataclass(frozen=True, slots=True)
class LedgerChange:
    new: tuple[Finding, ...]
    persisting: tuple[Finding, ...]
    resolved: tuple[str, ...]
    """Keys of findings that were open and are no longer found."""


class FindingsLedger:
    """One entity per finding: PartitionKey = subject (user id, `group:<id>`, `sku:<id>`),
    RowKey = the finding key; open while `resolvedAt` is empty."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def open_findings(self, subject: str) -> dict[str, Entity]:
        return {k: e for k, e in self._rows(subject).items() if not e.fields.get("resolvedAt")}

    def _rows(self, subject: str) -> dict[str, Entity]:
        return {
            str(e.fields.get("key") or e.row_key): e for e in self._table.query(safe_key(subject))
        }

    def reconcile(
        self,
        subject: str,
        findings: Sequence[Finding],
        *,
        now: datetime,
        run_id: str,
        reprocess_queued: Iterable[str] = (),
        keep: Collection[str] = (),
        read_at: datetime | None = None,
    ) -> LedgerChange:
        """Record what is found now for one subject: new, still there, and resolved. Open
        findings of the codes in `keep` belong to another job (`set_one`): left open, only
        marked seen (a user with an open finding not seen by the nightly run counts as gone).
        `read_at`: when the findings' data was read from Graph; nothing is written over rows
        written from a later read (the module docstring), and nothing at all when the subject
        has one (None: not known, written as before)."""
        queued = set(reprocess_queued)
        current = {f.key: f for f in findings}
        rows = self.rows_to_reconcile(subject, read_at)
        if rows is None:
            return LedgerChange((), (), ())  # recorded from a later read: that stands
        before = {k: e for k, e in rows.items() if not e.fields.get("resolvedAt")}
        for key, row in list(before.items()):
            if key not in current and row.fields.get("code") in keep:
                self._write_over(row, lambda seen: _seen(seen, now), read_at)
                del before[key]
        new, persisting = [], []
        for key, finding in current.items():
            entity = before.get(key)
            fields = _finding_fields(finding, now, run_id)
            fields["firstSeen"] = now
            fields[READ_AT] = read_at
            if key in queued:
                fields["reprocessQueuedAt"] = now
            if entity is None:
                fields["firstRunId"] = run_id
                earlier = rows.get(key)  # resolved before
                if earlier is not None:
                    if not self._write_over(earlier, partial(_reopened, fields), read_at):
                        continue  # resolved meanwhile from a later read
                elif not self._created(subject, key, fields, read_at):
                    persisting.append(finding)  # another run wrote it first: found again
                    continue
                new.append(finding)
            elif self._write_over(entity, partial(_persisting, fields), read_at):
                persisting.append(finding)
        resolved = []
        for key, entity in before.items():
            if key not in current and self._write_over(
                entity, lambda row: _resolved(row, now, run_id, read_at), read_at
            ):
                resolved.append(key)
        return LedgerChange(tuple(new), tuple(persisting), tuple(resolved))

    def rows_to_reconcile(self, subject: str, read_at: datetime | None) -> dict[str, Entity] | None:
        """The subject's rows (by finding key) `reconcile` writes over from data read at
        `read_at`; None when one was written from a later read: nothing is written for the
        subject (the dry run reports the same)."""
        rows = self._rows(subject)
        if any(written_after(row, read_at) for row in rows.values()):
            return None
        return rows

    def _created(
        self, subject: str, key: str, fields: dict[str, Any], read_at: datetime | None
    ) -> bool:
        """Create the finding's row; False when another run (a recompute of the same user at
        once) created it after we read: it is new once, and ours is written over it as found
        again, keeping what that run recorded (a reprocess queued)."""
        try:
            self._table.insert(safe_key(subject), safe_key(key), fields)
        except port.AlreadyExists:
            written = self._table.get(safe_key(subject), safe_key(key))
            if written is None:  # deleted meanwhile: ours stands
                self._table.upsert(safe_key(subject), safe_key(key), fields)
                return True
            self._write_over(written, partial(_persisting, fields), read_at)
            return False
        return True

    def _write_over(
        self,
        entity: Entity,
        make: Callable[[Entity], dict[str, Any] | None],
        read_at: datetime | None,
        tries: int = WRITE_ATTEMPTS,
    ) -> bool:
        """Write the row `make` makes from `entity`, only over the row as read: one written
        meanwhile (the digest marking it `alertedIn`, on another instance) is read again and
        made anew instead of overwritten, mark lost, and mailed again by the next digest.
        `make` returns None when there is nothing left to write. False (nothing written) when
        the row was written from a later read than `read_at`. Still changed at the last of
        `tries`: the `ConcurrencyConflict` is raised, and the run's redelivery (a recompute
        message, the nightly page from its checkpoint) redoes the work; writing anyway would
        pass the guard by or lose a mark."""
        current = entity
        for attempt in range(tries):
            if written_after(current, read_at):
                return False
            fields = make(current)
            if fields is None:
                return True
            pk, rk = current.partition_key, current.row_key
            try:
                self._table.update(pk, rk, fields, etag=current.etag)
                return True
            except port.ConcurrencyConflict:
                if attempt == tries - 1:
                    raise  # still contended: handed back
                current = self._table.get(pk, rk) or current
        return True

    def set_one(
        self, subject: str, key: str, finding: Finding | None, *, now: datetime, run_id: str
    ) -> None:
        """Open, keep or resolve one finding of a subject without touching its others (which
        `reconcile` would resolve): for standing, tenant-level conditions."""
        existing = self._table.get(safe_key(subject), safe_key(key))
        is_open = existing is not None and not existing.fields.get("resolvedAt")
        if finding is None:
            if existing is not None and is_open:
                fields = dict(existing.fields) | {"resolvedAt": now, "runId": run_id}
                self._table.upsert(existing.partition_key, existing.row_key, fields)
            return
        fields = _finding_fields(finding, now, run_id)
        fields["firstSeen"] = now
        if existing is not None and is_open:
            _carry_over(existing, fields)
        self._table.upsert(safe_key(subject), safe_key(key), fields)

    def run_changes(self, run_id: str) -> tuple[int, int]:
        """(opened, resolved) by run `run_id`, read from the ledger itself: right however
        often a resumed run reconciled the same subjects again (counters in memory were not)."""
        opened = resolved = 0
        for entity in self._table.query_all():
            fields = entity.fields
            if fields.get("firstRunId") == run_id:
                opened += 1
            if fields.get("resolvedAt") and fields.get("runId") == run_id:
                resolved += 1
        return opened, resolved

    def prune_resolved(self, now: datetime, keep: timedelta) -> int:
        """Delete the findings resolved at least `keep` ago whose resolution no alert owes
        (`_prunable`), each over the row as read: one found again meanwhile stands. Returns
        how many went; a crash part-way leaves the rest to the next night."""
        rows = (e for e in self._table.query_all() if _prunable(e.fields, now, keep))
        return delete_as_read(self._table, rows)

    def open_by_code(self, codes: Iterable[str]) -> list[Entity]:
        """The open findings of these codes (at most `MAX_FILTER_VALUES`): the table service
        sends those codes' rows only; open (no `resolvedAt`) is decided here, as a filter
        cannot ask for an absent field."""
        return [
            e
            for e in self._table.query_where("code", sorted(set(codes)))
            if not e.fields.get("resolvedAt")
        ]


def _prunable(fields: Mapping[str, object], now: datetime, keep: timedelta) -> bool:
    """Resolved at least `keep` ago, and no alert owes its resolution: never mailed as open
    (`alertedIn`), or a digest reported it resolved (`resolvedIn`). One still owed (mail
    failing, alerts switched off since, muted by an exclusion since: the digest skips it) goes
    after twice `keep`: not kept for ever. Read from the row alone, not the settings of the
    process pruning (`license-guard reconcile` runs without the app's alert settings)."""
    resolved = fields.get("resolvedAt")
    if not isinstance(resolved, datetime) or now - resolved < keep:
        return False
    owed = bool(fields.get("alertedIn")) and not fields.get("resolvedIn")
    return not owed or now - resolved >= 2 * keep


def _carry_over(entity: Entity, fields: dict[str, Any]) -> dict[str, Any]:
    """What a finding keeps while it stays open: when it was first seen, and what was done."""
    for kept in ("firstSeen", "firstRunId", "reprocessQueuedAt", "alertedIn"):
        if entity.fields.get(kept) is not None:
            fields[kept] = entity.fields[kept]
    return fields


def _reopened(fields: dict[str, Any], entity: Entity) -> dict[str, Any]:
    """A resolved finding found again. When no alert has reported its resolution yet (mailed,
    cleared and back before the next digest), to the admins it never went away: it stays the
    finding they were told about (first seen, which alert), not a new one to mail again."""
    fields = dict(fields)
    if entity.fields.get("alertedIn") and not entity.fields.get("resolvedIn"):
        for kept in ("firstSeen", "alertedIn"):
            if entity.fields.get(kept) is not None:
                fields[kept] = entity.fields[kept]
    return fields


def _persisting(fields: dict[str, Any], entity: Entity) -> dict[str, Any]:
    """The finding found again: `fields` with what its row keeps while it stays open."""
    return _carry_over(entity, dict(fields))


def _seen(entity: Entity, now: datetime) -> dict[str, Any] | None:
    """The open finding's row seen now, otherwise unchanged; None when resolved meanwhile."""
    if entity.fields.get("resolvedAt"):
        return None
    return dict(entity.fields) | {"lastSeen": now}


def _resolved(
    entity: Entity, now: datetime, run_id: str, read_at: datetime | None
) -> dict[str, Any] | None:
    """The open finding's row resolved by run `run_id` (from data read at `read_at`, when
    known); None when it was resolved already."""
    if entity.fields.get("resolvedAt"):
        return None
    resolved = dict(entity.fields) | {"resolvedAt": now, "runId": run_id}
    return resolved | {READ_AT: read_at} if read_at is not None else resolved


def stored_user_ids(fields: Mapping[str, object]) -> tuple[tuple[str, ...], int | None]:
    """A row's user ids (all of them, or the first `STORED_USER_IDS`) and, when they are a
    sample, how many users there are in all (None: the ids are all of them)."""
    ids = (
        tuple(str(u) for u in parse_json_field(str(fields["userIds"])))
        if fields.get("userIds")
        else ()
    )
    count = fields.get("userCount")
    if isinstance(count, int) and not isinstance(count, bool) and count > len(ids):
        return ids, count
    return ids, None


def _finding_fields(finding: Finding, now: datetime, run_id: str) -> dict[str, Any]:
    users = finding.user_ids
    return {
        **finding_fields(finding),
        "userIds": json_field(list(users[:STORED_USER_IDS])) if users else None,
        "userCount": len(users) if users else None,
        "lastSeen": now,
        "resolvedAt": None,
        "runId": run_id,
    }
