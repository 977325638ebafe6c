"""The service's state, each kind in its table, behind small repositories.

* `deltalinks`: the licensed groups (their configuration, as Graph returns it) and the fixed
  delta partitions of at most 50 of them, each with its delta link. Links are saved with
  optimistic concurrency, so two workers never overwrite each other's link.
* `groupmembers`: the member sets of licensed groups, so that a full resync (expired delta
  token) can still tell who left.
* `findings`: the findings ledger, one entity per open or resolved finding.
* `reprocessledger`: every reprocess attempt and every observed cause, the reprocess policy's
  history, and the claim that keeps duplicate messages from calling Graph twice.
* `servicestate`: caches and watermarks (subscribed SKUs, last sync time, the reprocess brake).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.core.findings import COUNT_VIOLATION, Finding
from shared.core.reprocess import Attempt, Cause
from shared.ports.directory import DELTA_FILTER_LIMIT, JSON
from shared.ports.tables import (
    AlreadyExists,
    ConcurrencyConflict,
    Entity,
    EntityStore,
    json_field,
    parse_json_field,
    safe_key,
)

GROUP_PK = "group"
PARTITION_PK = "partition"


# --------------------------------------------------------------------------- licensed groups


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    group_ids: tuple[str, ...]
    delta_link: str | None
    etag: str

    @property
    def row_key(self) -> str:
        return f"{self.index:04d}"


class LicensedGroups:
    """Licensed groups and the delta partitions that cover them (table `deltalinks`)."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def groups(self) -> dict[str, JSON]:
        return {
            e.row_key: parse_json_field(str(e.fields["json"]))
            for e in self._table.query(GROUP_PK)
            if e.fields.get("licensed", True)
        }

    def save_group(self, group: JSON) -> None:
        licensed = bool(group.get("assignedLicenses"))
        self._table.upsert(GROUP_PK, group["id"], {"json": json_field(group), "licensed": licensed})

    def forget_group(self, group_id: str) -> None:
        self._table.delete(GROUP_PK, group_id)

    def partitions(self) -> list[Partition]:
        return [
            Partition(
                int(e.row_key),
                tuple(parse_json_field(str(e.fields["groupIds"]))),
                str(e.fields.get("deltaLink") or "") or None,
                e.etag,
            )
            for e in self._table.query(PARTITION_PK)
        ]

    def assign(self, group_ids: Iterable[str]) -> list[Partition]:
        """Give each new group a place in a partition; return the partitions that changed.

        A group joins the last partition while it has room (its filter changes, so its delta
        link is reset and its next round is a full one), else starts a new partition. Groups
        already placed stay where they are: one group's arrival never resets the others'.
        """
        partitions = self.partitions()
        placed = {g for p in partitions for g in p.group_ids}
        new = sorted(set(group_ids) - placed)
        changed: dict[int, list[str]] = {}
        last = partitions[-1] if partitions else None
        for group_id in new:
            if last is not None and len(last.group_ids) + len(changed.get(last.index, ())) < (
                DELTA_FILTER_LIMIT
            ):
                changed.setdefault(last.index, list(last.group_ids)).append(group_id)
            else:
                index = last.index + 1 if last is not None else 0
                changed[index] = [group_id]
                last = Partition(index, (), None, "")
        result = []
        for index, ids in changed.items():
            fields = {"groupIds": json_field(ids), "deltaLink": ""}
            etag = self._table.upsert(PARTITION_PK, f"{index:04d}", fields)
            result.append(Partition(index, tuple(ids), None, etag))
        return result

    def save_delta_link(self, partition: Partition, delta_link: str) -> bool:
        """Store the partition's next link unless another worker moved it first."""
        fields = {"groupIds": json_field(list(partition.group_ids)), "deltaLink": delta_link}
        try:
            self._table.update(PARTITION_PK, partition.row_key, fields, etag=partition.etag)
        except ConcurrencyConflict:
            return False
        return True


# --------------------------------------------------------------------------- members


class GroupMembers:
    """Member sets of licensed groups (table `groupmembers`: PartitionKey group, RowKey user)."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def members(self, group_id: str) -> set[str]:
        return {e.row_key for e in self._table.query(group_id)}

    def apply(self, group_id: str, joined: Iterable[str], left: Iterable[str]) -> None:
        for user_id in joined:
            self._table.upsert(group_id, user_id, {})
        for user_id in left:
            self._table.delete(group_id, user_id)

    def replace(self, group_id: str, current: set[str]) -> tuple[set[str], set[str]]:
        """Make the stored set equal `current`; return (joined, left)."""
        stored = self.members(group_id)
        joined, left = current - stored, stored - current
        self.apply(group_id, joined, left)
        return joined, left


# --------------------------------------------------------------------------- SKUs and state


class ServiceState:
    """Caches and watermarks (table `servicestate`)."""

    SKU_PK = "sku"
    META_PK = "meta"

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def skus(self) -> tuple[list[JSON], datetime | None]:
        meta = self._table.get(self.META_PK, "skus")
        refreshed = meta.fields.get("refreshedAt") if meta else None
        skus = [parse_json_field(str(e.fields["json"])) for e in self._table.query(self.SKU_PK)]
        return skus, refreshed if isinstance(refreshed, datetime) else None

    def save_skus(self, skus: Sequence[JSON], now: datetime) -> None:
        for sku in skus:
            self._table.upsert(self.SKU_PK, sku["skuId"], {"json": json_field(sku)})
        self._table.upsert(self.META_PK, "skus", {"refreshedAt": now})

    def get(self, name: str) -> Entity | None:
        return self._table.get(self.META_PK, name)

    def put(self, name: str, fields: dict[str, Any], etag: str | None = None) -> str:
        if etag is None:
            return self._table.upsert(self.META_PK, name, fields)
        return self._table.update(self.META_PK, name, fields, etag=etag)

    def insert(self, name: str, fields: dict[str, Any]) -> str:
        return self._table.insert(self.META_PK, name, fields)


# --------------------------------------------------------------------------- findings ledger


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
        return {
            str(e.fields.get("key") or e.row_key): e
            for e in self._table.query(safe_key(subject))
            if not e.fields.get("resolvedAt")
        }

    def reconcile(
        self,
        subject: str,
        findings: Sequence[Finding],
        *,
        now: datetime,
        run_id: str,
        reprocess_queued: Iterable[str] = (),
    ) -> LedgerChange:
        """Record what is found now for one subject: new, still there, and resolved."""
        queued = set(reprocess_queued)
        current = {f.key: f for f in findings}
        before = self.open_findings(subject)
        new, persisting = [], []
        for key, finding in current.items():
            entity = before.get(key)
            fields = _finding_fields(finding, now, run_id)
            fields["firstSeen"] = now
            if entity is None:
                new.append(finding)
                fields["firstRunId"] = run_id
            else:
                persisting.append(finding)
                _carry_over(entity, fields)
            if key in queued:
                fields["reprocessQueuedAt"] = now
            self._table.upsert(safe_key(subject), safe_key(key), fields)
        resolved = []
        for key, entity in before.items():
            if key not in current:
                fields = dict(entity.fields)
                fields["resolvedAt"] = now
                fields["runId"] = run_id
                self._table.upsert(entity.partition_key, entity.row_key, fields)
                resolved.append(key)
        return LedgerChange(tuple(new), tuple(persisting), tuple(resolved))

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

    def open_by_code(self, codes: Iterable[str]) -> list[Entity]:
        wanted = set(codes)
        return [
            e
            for e in self._table.query_all()
            if e.fields.get("code") in wanted and not e.fields.get("resolvedAt")
        ]


def _carry_over(entity: Entity, fields: dict[str, Any]) -> None:
    """What a finding keeps while it stays open: when it was first seen, and what was done."""
    for kept in ("firstSeen", "firstRunId", "reprocessQueuedAt", "alertedIn"):
        if entity.fields.get(kept) is not None:
            fields[kept] = entity.fields[kept]


def _finding_fields(finding: Finding, now: datetime, run_id: str) -> dict[str, Any]:
    return {
        "key": finding.key,
        "code": finding.code,
        "severity": finding.severity,
        "skuId": finding.sku_id,
        "groupId": finding.group_id,
        "message": finding.message,
        "remedy": finding.remedy,
        "userIds": json_field(list(finding.user_ids)) if finding.user_ids else None,
        "lastSeen": now,
        "resolvedAt": None,
        "runId": run_id,
    }


# --------------------------------------------------------------------------- reprocess ledger

QUEUED = "queued"
CALLING = "calling"
DONE = "done"
GONE = "gone"
OBSERVED = "observed"
ATTEMPTED = frozenset({QUEUED, CALLING, DONE, GONE})
STALE_CLAIM = timedelta(minutes=10)


def cause_token(cause: Cause) -> str:
    """A short stable id for a cause with its evidence (a row key, and a message field)."""
    text = "\x1f".join((cause.key, *cause.evidence))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Claim:
    """What `ReprocessLedger.claim` took: the leased causes, when a busy one frees up, and
    since when an earlier attempt may already have called Graph."""

    entities: list[Entity] = field(default_factory=list)
    busy_until: datetime | None = None
    uncertain_since: datetime | None = None


class ReprocessLedger:
    """Per user (PartitionKey), one entity per cause with its evidence (RowKey = cause token)."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def history(self, user_id: str) -> list[Attempt]:
        attempts = []
        for entity in self._table.query(user_id):
            fields = entity.fields
            cause = Cause(
                str(fields["code"]),
                _opt(fields.get("skuId")),
                _opt(fields.get("groupId")),
                tuple(parse_json_field(str(fields.get("evidence") or "[]"))),
            )
            at = fields.get("at")
            if isinstance(at, datetime):
                attempts.append(Attempt(at, cause, reprocessed=fields.get("status") in ATTEMPTED))
        return attempts

    def queue(self, user_id: str, cause: Cause, *, now: datetime, correlation_id: str) -> bool:
        """Record that a reprocess for this cause is queued; False if it already was."""
        fields = _cause_fields(cause, now, QUEUED) | {"sent": False}
        try:
            self._table.insert(user_id, cause_token(cause), fields)
        except AlreadyExists:
            existing = self._table.get(user_id, cause_token(cause))
            if existing is None or existing.fields.get("status") != OBSERVED:
                return False
            try:
                self._table.update(user_id, cause_token(cause), fields, etag=existing.etag)
            except ConcurrencyConflict:
                return False
        return True

    def unsent(self, user_id: str) -> list[str]:
        """Tokens of causes recorded as queued whose message was never confirmed sent."""
        return sorted(
            e.row_key
            for e in self._table.query(user_id)
            if e.fields.get("status") == QUEUED and e.fields.get("sent") is False
        )

    def mark_sent(self, user_id: str, tokens: Iterable[str]) -> None:
        """The message for these queued causes is on the queue (only `sent` changes)."""
        for token in tokens:
            for _ in range(3):
                entity = self._table.get(user_id, token)
                if entity is None or entity.fields.get("sent") is not False:
                    break
                try:
                    fields = dict(entity.fields) | {"sent": True}
                    self._table.update(user_id, token, fields, etag=entity.etag)
                    break
                except ConcurrencyConflict:
                    continue

    def observe(self, user_id: str, attempts: Iterable[Attempt]) -> None:
        for attempt in attempts:
            fields = _cause_fields(attempt.cause, attempt.at, OBSERVED)
            try:
                self._table.insert(user_id, cause_token(attempt.cause), fields)
            except AlreadyExists:
                continue

    def claim(self, user_id: str, tokens: Sequence[str], *, now: datetime) -> Claim:
        """Take the causes for one call, each under a lease of `STALE_CLAIM`.

        A cause done (or gone) is skipped; one leased by another attempt right now is `busy`
        (its holder may have crashed: the caller retries after `busy_until`, never drops it).
        A cause whose earlier attempt may have reached Graph (lease expired while `calling`,
        or an ambiguous failure flagged `uncertain`) makes the claim `uncertain`, so the
        caller verifies before calling again (docs/reliability.md)."""
        claim = Claim()
        for token in tokens:
            entity = self._table.get(user_id, token)
            if entity is None:
                continue
            status = entity.fields.get("status")
            at = entity.fields.get("at")
            leased = status == CALLING and isinstance(at, datetime)
            if status in (DONE, GONE):
                continue
            if leased and isinstance(at, datetime) and now - at < STALE_CLAIM:
                until = at + STALE_CLAIM
                claim.busy_until = max(claim.busy_until or until, until)
                continue
            since = entity.fields.get("uncertainSince")
            if leased and isinstance(at, datetime):
                since = at
            fields = dict(entity.fields) | {"status": CALLING, "at": now}
            if isinstance(since, datetime):
                fields["uncertainSince"] = since
                claim.uncertain_since = min(claim.uncertain_since or since, since)
            try:
                etag = self._table.update(user_id, token, fields, etag=entity.etag)
            except ConcurrencyConflict:
                claim.busy_until = claim.busy_until or now + STALE_CLAIM
                continue
            claim.entities.append(Entity(entity.partition_key, entity.row_key, fields, etag))
        return claim

    def release(self, user_id: str, tokens: Sequence[str]) -> None:
        """Causes queued but never called (writes were blocked at call time) become
        observations again: they were no attempt, so a later decision may queue them."""
        for token in tokens:
            entity = self._table.get(user_id, token)
            if entity is None or entity.fields.get("status") != QUEUED:
                continue
            fields = dict(entity.fields) | {"status": OBSERVED}
            with contextlib.suppress(ConcurrencyConflict):
                self._table.update(user_id, token, fields, etag=entity.etag)

    def seats_in_flight(self, user_id: str) -> set[str]:
        """SKUs with a CountViolation reprocess for this user queued or being called: a seat
        promised that the SKU's consumed count does not show yet."""
        return {
            str(e.fields.get("skuId"))
            for e in self._table.query(user_id)
            if e.fields.get("code") == COUNT_VIOLATION
            and e.fields.get("status") in (QUEUED, CALLING)
        }

    def settle(
        self,
        claimed: Sequence[Entity],
        status: str,
        *,
        now: datetime,
        uncertain: bool = False,
    ) -> None:
        """Record the call's outcome; `uncertain` (back to `queued` after a failure whose
        request may have reached Graph) keeps the first such time, so the retry verifies."""
        for entity in claimed:
            fields = dict(entity.fields) | {"status": status, "at": now}
            if status != QUEUED:
                fields.pop("uncertainSince", None)
            elif uncertain and not isinstance(fields.get("uncertainSince"), datetime):
                fields["uncertainSince"] = entity.fields.get("at") or now
            self._table.upsert(entity.partition_key, entity.row_key, fields)


def _cause_fields(cause: Cause, at: datetime, status: str) -> dict[str, Any]:
    return {
        "code": cause.code,
        "skuId": cause.sku_id,
        "groupId": cause.group_id,
        "evidence": json_field(list(cause.evidence)),
        "at": at,
        "status": status,
    }


def _opt(value: object) -> str | None:
    return str(value) if value else None
