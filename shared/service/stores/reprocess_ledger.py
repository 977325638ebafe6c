"""`ReprocessLedger`: every reprocess attempt and observed cause (table `reprocessledger`).

The reprocess policy's history, and the claim that keeps duplicate messages from calling Graph
twice: per user (PartitionKey), one entity per cause with its evidence (RowKey = cause token),
moving through queued -> calling -> done/gone (or removed when never called, or to refused
when Graph refused the app's call with a 401/403).

Retention: a gone user's rows go with their capability record (`forget`); a user who is there
loses a cause's rows once none was written for `FINDINGS_RETENTION_DAYS` and no finding of
theirs of that cause is open (`prune_quiet`, the nightly finish).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.core.findings import COUNT_VIOLATION
from shared.core.reprocess import Attempt, Cause
from shared.ports.tables import (
    AlreadyExists,
    ConcurrencyConflict,
    Entity,
    EntityStore,
    json_field,
    parse_json_field,
)
from shared.service.stores.contention import delete_as_read

QUEUED = "queued"
CALLING = "calling"
DONE = "done"
GONE = "gone"
OBSERVED = "observed"
REFUSED = "refused"
ATTEMPTED = frozenset({QUEUED, CALLING, DONE, GONE})
STALE_CLAIM = timedelta(minutes=10)
REFUSED_RETRY = timedelta(days=1)
"""A cause whose call Graph refused (401/403: the write permission is missing) is queued again
by the first recompute this long after the refusal, not by every one before."""
STALE_IN_FLIGHT = timedelta(days=2)
"""A queued or leased cause untouched this long has no message left: every attempt of a live
one records its time again, and the longest wait between attempts is the brake's (until the
next UTC day). Its message failed every attempt and went to -poison (reported there)."""
REQUEST = "request="
"""Evidence an admin's request adds (`request=<id>`), so each request has its own row; the
policy reads it as an attempt for the evidence it decides on (`policy_cause`) alone."""


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

    def __init__(self, table: EntityStore, *, seats_counted_at: datetime | None = None) -> None:
        self._table = table
        self._counted_at = seats_counted_at
        """When the SKU counts the caller decides seats on were read (None: not known): a
        CountViolation reprocess done since still holds its seat, which those consumed units
        do not show yet (the recompute's SKU cache is up to an hour old)."""

    def history(self, user_id: str) -> list[Attempt]:
        attempts = []
        for entity in self._table.query(user_id):
            fields = entity.fields
            if fields.get("status") == REFUSED:
                continue  # never reached the user: neither an attempt nor an observation
            at = fields.get("at")
            if isinstance(at, datetime):
                attempts.append(
                    Attempt(at, _cause(fields), reprocessed=fields.get("status") in ATTEMPTED)
                )
        return attempts

    def queued_by(self, user_id: str, correlation_id: str) -> list[Cause]:
        """The user's causes this run (or message) queued itself, whatever became of them since
        (sent, called, done), unless handed back or refused: a resumed page or a redelivered
        message meets them as already reprocessed. Rows written before the run id was kept
        (no `runId`) are no run's."""
        return [
            _cause(e.fields)
            for e in self._table.query(user_id)
            if e.fields.get("runId") == correlation_id and e.fields.get("status") in ATTEMPTED
        ]

    def queue(self, user_id: str, cause: Cause, *, now: datetime, correlation_id: str) -> bool:
        """Record that a reprocess for this cause is queued (by `correlation_id`, the run's id:
        `queued_by`); False if it already was (or was refused less than `REFUSED_RETRY` ago)."""
        fields = _cause_fields(cause, now, QUEUED) | {"sent": False, "runId": correlation_id}
        try:
            self._table.insert(user_id, cause_token(cause), fields)
        except AlreadyExists:
            existing = self._table.get(user_id, cause_token(cause))
            if existing is None or not _may_queue_again(existing, now):
                return False
            try:
                self._table.update(user_id, cause_token(cause), fields, etag=existing.etag)
            except ConcurrencyConflict:
                return False
        return True

    def unsent(self, user_id: str) -> list[str]:
        """Tokens of causes recorded as queued whose message was never confirmed sent."""
        return sorted(self.unsent_seats(user_id))

    def unsent_seats(self, user_id: str) -> dict[str, str | None]:
        """`unsent`, each token with the SKU whose seat it holds (a CountViolation), else None."""
        return {
            e.row_key: str(e.fields.get("skuId"))
            if e.fields.get("code") == COUNT_VIOLATION
            else None
            for e in sorted(self._table.query(user_id), key=lambda e: e.row_key)
            if e.fields.get("status") == QUEUED and e.fields.get("sent") is False
        }

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
        """Record causes as seen now. A cause seen before (one row per cause and evidence)
        whose row is an observation is seen again: its time moves to now, so the policy reads
        it as the latest entry (a second seat shortage after a reprocess is one, and its end
        allows the next attempt). A row of an attempt, in flight or refused stays as it is."""
        for attempt in attempts:
            token = cause_token(attempt.cause)
            fields = _cause_fields(attempt.cause, attempt.at, OBSERVED)
            try:
                self._table.insert(user_id, token, fields)
            except AlreadyExists:
                existing = self._table.get(user_id, token)
                if existing is None or existing.fields.get("status") != OBSERVED:
                    continue
                at = existing.fields.get("at")
                if isinstance(at, datetime) and at >= attempt.at:
                    continue
                with contextlib.suppress(ConcurrencyConflict):
                    self._table.update(
                        user_id, token, dict(existing.fields) | {"at": attempt.at},
                        etag=existing.etag,
                    )  # fmt: skip

    def claim(self, user_id: str, tokens: Sequence[str], *, now: datetime) -> Claim:
        """Take the causes for one call, each under a lease of `STALE_CLAIM`.

        A cause done, gone or refused is skipped (a refused one is queued again first, by
        `queue`); one leased by another attempt right now is `busy`
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
            if status in (DONE, GONE, REFUSED):
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
        """Causes queued but never called (writes were blocked at call time, a seat handed
        back) are removed: they were no attempt, so a later decision may queue them, and no
        observation either. Kept as one, a corrected usage location (or a conflict's changed
        paths) read as seen unchanged, and the reprocess it had qualified for never came."""
        for token in tokens:
            entity = self._table.get(user_id, token)
            if entity is None or entity.fields.get("status") != QUEUED:
                continue
            with contextlib.suppress(ConcurrencyConflict):
                self._table.delete(user_id, token, etag=entity.etag)

    def seats_in_flight(self, user_id: str, *, now: datetime, done: bool = True) -> set[str]:
        """SKUs with a CountViolation reprocess for this user queued or being called: a seat
        promised that the SKU's consumed count does not show yet. Not one whose message was
        poisoned (`STALE_IN_FLIGHT`), unless never sent (the recompute sends it now). With
        `done` False, not one done since the counts were read either."""
        counted_at = self._counted_at if done else None
        return {
            str(e.fields.get("skuId"))
            for e in self._table.query(user_id)
            if _holds_seat(e, now, sending=True, counted_at=counted_at)
        }

    def seats_in_flight_by_user(self, *, now: datetime) -> dict[str, set[str]]:
        """`seats_in_flight` of every user, tenant-wide (one table scan): the seats promised
        to reprocesses of users another decision does not read. One never sent holds its seat
        only until `STALE_IN_FLIGHT` here: only a recompute of its user sends it."""
        found: dict[str, set[str]] = {}
        for e in self._table.query_all():
            if _holds_seat(e, now, sending=False, counted_at=self._counted_at):
                found.setdefault(e.partition_key, set()).add(str(e.fields.get("skuId")))
        return found

    def users(self) -> set[str]:
        """Every user with a row (one table scan: the nightly finish's clean-up)."""
        return {e.partition_key for e in self._table.query_all()}

    def forget(self, user_id: str, *, before: datetime) -> int:
        """Delete a gone user's rows last written no later than `before` (when Graph was
        found not to know them), each over the row as read: one written since (the user was
        restored and decided again) stands, as does one changed meanwhile (the next look
        finds it). A call in flight for the user settles `gone` and writes its row again, for
        the next clean-up. Returns how many rows went."""

        def not_after(entity: Entity) -> bool:
            at = entity.fields.get("at")
            return not (isinstance(at, datetime) and at > before)

        return delete_as_read(self._table, filter(not_after, self._table.query(user_id)))

    def users_written_before(self, before: datetime) -> set[str]:
        """The users with a row last written before `before` (one table scan)."""
        return {
            e.partition_key
            for e in self._table.query_all()
            if isinstance(at := e.fields.get("at"), datetime) and at < before
        }

    def prune_quiet(self, user_id: str, before: datetime, *, open_causes: Collection[str]) -> int:
        """Delete the rows of each of the user's causes (`Cause.key`) none of whose rows was
        written since `before`, unless the user has an open finding of it (`open_causes`), each
        over the row as read (one written meanwhile stands). Returns how many went."""
        by_key: dict[str, list[Entity]] = {}
        for entity in self._table.query(user_id):
            by_key.setdefault(_cause(entity.fields).key, []).append(entity)
        quiet = (
            entity
            for key, entities in by_key.items()
            if key not in open_causes and not any(_written_since(e, before) for e in entities)
            for entity in entities
        )
        return delete_as_read(self._table, quiet)

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


def _cause(fields: Mapping[str, Any]) -> Cause:
    """The cause a row records, without the evidence an admin's request adds."""
    return Cause(
        str(fields["code"]),
        _opt(fields.get("skuId")),
        _opt(fields.get("groupId")),
        tuple(
            e
            for e in parse_json_field(str(fields.get("evidence") or "[]"))
            if not str(e).startswith(REQUEST)
        ),
    )


def _cause_fields(cause: Cause, at: datetime, status: str) -> dict[str, Any]:
    return {
        "code": cause.code,
        "skuId": cause.sku_id,
        "groupId": cause.group_id,
        "evidence": json_field(list(cause.evidence)),
        "at": at,
        "status": status,
    }


def _may_queue_again(entity: Entity, now: datetime) -> bool:
    """An observation, or a cause refused `REFUSED_RETRY` ago, may be queued."""
    status = entity.fields.get("status")
    refused_long_ago = status == REFUSED and _since(entity.fields.get("at"), now) >= REFUSED_RETRY
    return status == OBSERVED or refused_long_ago


def _holds_seat(
    entity: Entity, now: datetime, *, sending: bool, counted_at: datetime | None = None
) -> bool:
    """A CountViolation cause queued or being called, not poisoned (`STALE_IN_FLIGHT`) -
    or, when the caller sends its user's unsent causes now (`sending`), never sent; or done
    after the SKU counts were read (`counted_at`), which do not show its seat consumed."""
    fields = entity.fields
    if fields.get("code") != COUNT_VIOLATION:
        return False
    at = fields.get("at")
    if fields.get("status") == DONE:
        return counted_at is not None and isinstance(at, datetime) and at >= counted_at
    live = _since(at, now) < STALE_IN_FLIGHT
    return fields.get("status") in (QUEUED, CALLING) and (
        live or (sending and fields.get("sent") is False)
    )


def _written_since(entity: Entity, before: datetime) -> bool:
    """Written at or after `before`; a row without a time counts as recent (kept)."""
    at = entity.fields.get("at")
    return not isinstance(at, datetime) or at >= before


def _since(at: object, now: datetime) -> timedelta:
    return now - at if isinstance(at, datetime) else timedelta(0)


def _opt(value: object) -> str | None:
    return str(value) if value else None
