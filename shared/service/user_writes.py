"""The user pipeline's writes: the ledgers and queues for real, or a recording for the dry run.

The pipeline (`shared.service.users`) decides once and hands every effect to a `UserWrites`:
`LedgerWrites` records findings, queues reprocesses through the ledger's outbox and mails the
data-loss guard; `RecordedWrites` reads the findings ledger, writes nothing and keeps each
effect as a line in the mail's wording, so the dry run is the same path as the real run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from shared.core.evaluate import UserReport
from shared.core.findings import COUNT_VIOLATION, Finding, Names
from shared.core.model import Tenant
from shared.core.reprocess import Attempt, ReprocessNow
from shared.core.reprocess_plan import BACKOFF_BASE
from shared.ports.messages import RecomputeUsers, ReprocessUser, clipped, format_timestamp
from shared.service.crashpoints import crash_point
from shared.service.dataloss import alert_data_loss, with_data_loss
from shared.service.refused_writes import kept_by_recompute
from shared.service.services import Services
from shared.service.stores import FindingsLedger, LedgerChange, ReprocessLedger, cause_token
from shared.service.stores.pending_retries import PendingRetries

log = structlog.get_logger(__name__)


HAND_BACK_SPREAD = 60
"""Seconds after `BACKOFF_BASE` over which the retries of users handed back at the seat
re-check are spread. Less than a minute, so they come before the users the same decisions left
waiting for a seat (retried on the minute after the backoff) and take the seats first."""


def hand_back_delay(user_id: str, now: datetime) -> int:
    """The retry delay of a user handed back at `now`: the backoff and a share of the spread
    hashed from the user and the moment (deterministic; two users meeting in one round are
    unlikely to meet again in the next)."""
    digest = hashlib.sha256(f"{user_id}|{now.isoformat()}".encode()).digest()
    return int(BACKOFF_BASE.total_seconds()) + int.from_bytes(digest[:4], "big") % HAND_BACK_SPREAD


class UserWrites(Protocol):
    """Every effect of the act step."""

    def send_unsent(self, user_id: str, correlation_id: str, unused: Mapping[str, int]) -> None:
        """Send the user's reprocesses recorded as queued but never sent, their seats checked
        as `queue_reprocess` checks them (`unused`: `unused_seats`)."""
        ...

    def would_queue(self, decision: ReprocessNow, blocked: str, correlation_id: str) -> None: ...

    def queue_reprocess(
        self, decisions: Sequence[ReprocessNow], correlation_id: str, unused: Mapping[str, int]
    ) -> list[str]:
        """Queue a decided batch's reprocesses; the users queued: not those whose every cause
        was queued already, or whose seat went to reprocesses queued at the same time
        (`unused`: `unused_seats`; these are recomputed after `BACKOFF_BASE`)."""
        ...

    def send_retries(self, user_ids: Sequence[str], delay: int, correlation_id: str) -> None: ...

    def observe(self, observations: Mapping[str, Sequence[Attempt]]) -> None: ...

    def with_data_loss(self, reports: Sequence[UserReport], tenant: Tenant) -> list[UserReport]:
        """The reports with the data-loss guard's findings; `tenant` the SKUs just read."""
        ...

    def reconcile_findings(
        self, user_id: str, findings: Sequence[Finding], run_id: str, reprocess_queued: list[str]
    ) -> LedgerChange: ...

    async def alert_data_loss(self, new_findings: Sequence[Finding]) -> None: ...


class LedgerWrites:
    """The real effects: the reprocess ledger as an outbox, the queues, the findings ledger.
    `read_at`: when the users were read from Graph (`Mode.read_at`): the findings and the
    data-loss guard's records leave what a later read of a user wrote."""

    def __init__(
        self,
        svc: Services,
        ledger: ReprocessLedger,
        read_at: datetime | None = None,
        *,
        alerting: bool = True,
    ) -> None:
        self.svc, self.ledger, self.read_at = svc, ledger, read_at
        self.findings = FindingsLedger(svc.tables.findings)
        self.new_losses: set[str] | None = set() if alerting else None
        """Users whose loss of a capability the data-loss guard recorded (`alert_data_loss`);
        None when this settle alerts nothing (a baseline): no loss is noted as owed."""

    def send_unsent(self, user_id: str, correlation_id: str, unused: Mapping[str, int]) -> None:
        """Send the user's reprocess causes recorded as queued but never sent. A duplicate
        message is harmless (the worker's claim lets one call through), a lost one is not.
        Their seats are checked first: the batch that recorded them may have crashed before
        its own check (`_beyond_free_seats`), and sending unchecked could oversubscribe."""
        rows = self.ledger.unsent_seats(user_id)
        seats: dict[tuple[str, str], list[str]] = {}
        for token, sku in rows.items():
            if sku is not None:
                seats.setdefault((user_id, sku), []).append(token)
        over = self._over_seats(seats, unused, self.svc.now())
        self._hand_back(over, correlation_id)
        unsent = [token for token in rows if token not in over.get(user_id, ())]
        if not unsent:
            return
        self.svc.send(
            ReprocessUser(
                user_id=user_id,
                causes=tuple(unsent),
                reason="queued earlier, never sent",
                correlation_id=correlation_id,
            )
        )
        self.ledger.mark_sent(user_id, unsent)
        log.info("reprocess.resent", correlation_id=correlation_id, user_id=user_id,
                 causes=len(unsent))  # fmt: skip

    def would_queue(self, decision: ReprocessNow, blocked: str, correlation_id: str) -> None:
        log.info(
            "reprocess.would_queue",
            correlation_id=correlation_id,
            user_id=decision.user_id,
            because=decision.reason,
            blocked_by=blocked,
        )

    def queue_reprocess(
        self, decisions: Sequence[ReprocessNow], correlation_id: str, unused: Mapping[str, int]
    ) -> list[str]:
        svc, now = self.svc, self.svc.now()
        recorded: dict[str, list[str]] = {}
        for decision in decisions:
            user_id = decision.user_id
            tokens = [
                cause_token(cause)
                for cause in decision.causes
                if self.ledger.queue(user_id, cause, now=now, correlation_id=correlation_id)
            ]
            if tokens:  # none: every cause already queued by a duplicate message
                recorded[user_id] = tokens
        if not recorded:
            return []
        over = self._beyond_free_seats(decisions, recorded, unused, now)
        self._hand_back(over, correlation_id)
        kept: dict[str, tuple[ReprocessNow, list[str]]] = {}
        for decision in decisions:
            given_back = over.get(decision.user_id, [])
            tokens = [t for t in recorded.get(decision.user_id, []) if t not in given_back]
            if tokens:
                kept[decision.user_id] = (decision, tokens)
        # Recorded as queued-but-unsent first (an outbox): a crash or a failed send here leaves
        # the kept ones for `send_unsent` on the redelivery, not a "queued" that is never sent.
        crash_point(svc, "recompute.after_ledger_queued")
        for decision, tokens in kept.values():
            svc.send(
                ReprocessUser(
                    user_id=decision.user_id,
                    causes=tuple(tokens),
                    reason=clipped(decision.reason),  # one reason per cause: any length
                    correlation_id=correlation_id,
                )
            )
        crash_point(svc, "recompute.after_reprocess_sent")
        for decision, tokens in kept.values():
            self.ledger.mark_sent(decision.user_id, tokens)
            log.info(
                "reprocess.queued",
                correlation_id=correlation_id,
                user_id=decision.user_id,
                because=decision.reason,
            )
        return list(kept)

    def _beyond_free_seats(
        self,
        decisions: Sequence[ReprocessNow],
        recorded: Mapping[str, Sequence[str]],
        unused: Mapping[str, int],
        now: datetime,
    ) -> dict[str, list[str]]:
        """Per user, the CountViolation causes just recorded (`recorded`) to hand back: one
        read of the seats in flight tenant-wide for the whole batch, then, for each SKU with
        more users in flight (this batch's included) than `unused` seats, this batch's own
        rows, the latest first, until within the seats or none of its own are left. Decisions
        made at the same time each read the ledger before the others wrote, so each may
        promise the same free seats; after writing, the last of them to check sees every row
        written before its check (the kept rows of earlier checks included), so the
        reprocesses kept are never more than the seats (all may give theirs back under
        contention: they are decided again after `BACKOFF_BASE`)."""
        seats: dict[tuple[str, str], list[str]] = {}  # a user holds one seat of a SKU
        for decision in decisions:
            fresh = recorded.get(decision.user_id, ())
            for c in decision.causes:
                if c.code == COUNT_VIOLATION and cause_token(c) in fresh:
                    seats.setdefault((decision.user_id, c.sku_id or ""), []).append(cause_token(c))
        return self._over_seats(seats, unused, now)

    def _over_seats(
        self,
        seats: dict[tuple[str, str], list[str]],
        unused: Mapping[str, int],
        now: datetime,
    ) -> dict[str, list[str]]:
        """Of these rows of one batch (user and SKU -> tokens, in order), the ones to hand
        back (see `_beyond_free_seats`)."""
        if not seats:
            return {}
        in_flight = self.ledger.seats_in_flight_by_user(now=now)
        for user_id, sku in seats:  # the batch's own, even one unsent since STALE_IN_FLIGHT
            in_flight.setdefault(user_id, set()).add(sku)
        taken = Counter(sku for skus in in_flight.values() for sku in skus)
        over: dict[str, list[str]] = {}
        for (user_id, sku), tokens in reversed(seats.items()):
            if taken[sku] > unused.get(sku, 0):
                over.setdefault(user_id, []).extend(tokens)
                taken[sku] -= 1
        return over

    def _hand_back(self, over: Mapping[str, Sequence[str]], correlation_id: str) -> None:
        """Release the rows beyond the free seats; their users are decided again after the
        backoff, each at its own second (`hand_back_delay`): batches that handed back at the
        same moment would otherwise be retried together and could all hand back again."""
        now = self.svc.now()
        retry_at: dict[int, list[str]] = {}
        for user_id, tokens in over.items():
            self.ledger.release(user_id, tokens)
            log.info("reprocess.seat_taken", correlation_id=correlation_id,
                     user_id=user_id, causes=len(tokens))  # fmt: skip
            retry_at.setdefault(hand_back_delay(user_id, now), []).append(user_id)
        for delay, user_ids in sorted(retry_at.items()):
            self.send_retries(user_ids, delay, correlation_id)

    def send_retries(self, user_ids: Sequence[str], delay: int, correlation_id: str) -> None:
        # One delayed recompute per minute of delay and 100 users, not one per user; none for
        # a user whose retry already sent comes no later (`PendingRetries`: one chain a user).
        now = self.svc.now()
        due = now + timedelta(seconds=delay)
        pending = PendingRetries(self.svc.tables.servicestate)
        fresh = [u for u in user_ids if not pending.covered(u, due, now)]
        for batch in RecomputeUsers.batches(
            fresh,
            reason="retry after backoff",
            correlation_id=correlation_id,
            due_at=format_timestamp(due),
        ):
            self.svc.send(batch, delay_seconds=delay)
        for user_id in fresh:  # after the send: a crash between sends a duplicate, loses none
            pending.record(user_id, due)

    def observe(self, observations: Mapping[str, Sequence[Attempt]]) -> None:
        for user_id, attempts in observations.items():
            self.ledger.observe(user_id, attempts)

    def with_data_loss(self, reports: Sequence[UserReport], tenant: Tenant) -> list[UserReport]:
        return with_data_loss(
            self.svc, reports, tenant, read_at=self.read_at, new_losses=self.new_losses
        )

    def reconcile_findings(
        self, user_id: str, findings: Sequence[Finding], run_id: str, reprocess_queued: list[str]
    ) -> LedgerChange:
        return self.findings.reconcile(
            user_id,
            findings,
            now=self.svc.now(),
            run_id=run_id,
            reprocess_queued=reprocess_queued,
            keep=kept_by_recompute(findings),
            read_at=self.read_at,
        )

    async def alert_data_loss(self, new_findings: Sequence[Finding]) -> None:
        await alert_data_loss(self.svc, new_findings, new_losses=bool(self.new_losses))


class RecordedWrites:
    """The dry run's writer: the findings ledger is read, nothing is written; each effect
    becomes a line (`finding_lines`, `reprocess_lines`) naming users, products and groups.
    `read_at`: when the users were read, as `LedgerWrites` takes it: what a later read of a
    user recorded is left, as the run leaves it."""

    def __init__(self, svc: Services, read_at: datetime | None = None) -> None:
        self.svc, self.read_at = svc, read_at
        self.findings = FindingsLedger(svc.tables.findings)
        self.tenant = Tenant({}, {}, {}, None)
        self.names = Names(self.tenant)
        self.finding_lines: list[str] = []
        self.reprocess_lines: list[str] = []

    def page(self, tenant: Tenant, names: Names) -> None:
        """The tenant (and its names) the next lines speak of."""
        self.tenant, self.names = tenant, names

    def take_lines(self) -> list[str]:
        """The lines recorded since the last call: findings first, then reprocesses."""
        lines = self.finding_lines + self.reprocess_lines
        self.finding_lines, self.reprocess_lines = [], []
        return lines

    def send_unsent(self, user_id: str, correlation_id: str, unused: Mapping[str, int]) -> None:
        return None

    def would_queue(self, decision: ReprocessNow, blocked: str, correlation_id: str) -> None:
        self.reprocess_lines.append(
            f"would reprocess {self.who(decision.user_id)} because {self.because(decision)} "
            f"(not queued: {blocked})"
        )

    def queue_reprocess(
        self, decisions: Sequence[ReprocessNow], correlation_id: str, unused: Mapping[str, int]
    ) -> list[str]:
        for decision in decisions:
            self.reprocess_lines.append(
                f"reprocess {self.who(decision.user_id)} because {self.because(decision)}"
            )
        return [decision.user_id for decision in decisions]

    def send_retries(self, user_ids: Sequence[str], delay: int, correlation_id: str) -> None:
        return None

    def observe(self, observations: Mapping[str, Sequence[Attempt]]) -> None:
        return None

    def with_data_loss(self, reports: Sequence[UserReport], tenant: Tenant) -> list[UserReport]:
        return with_data_loss(  # records are writes
            self.svc, reports, tenant, write=False, read_at=self.read_at
        )

    def reconcile_findings(
        self, user_id: str, findings: Sequence[Finding], run_id: str, reprocess_queued: list[str]
    ) -> LedgerChange:
        rows = self.findings.rows_to_reconcile(user_id, self.read_at)
        if rows is None:
            return LedgerChange((), (), ())  # recorded from a later read: the run leaves it
        kept = kept_by_recompute(findings)
        open_keys = {
            k
            for k, e in rows.items()
            if not e.fields.get("resolvedAt") and e.fields.get("code") not in kept
        }
        new = tuple(f for f in findings if f.key not in open_keys)
        resolved = tuple(sorted(open_keys - {f.key for f in findings}))
        for finding in new:
            self.finding_lines.append(
                f"new finding {finding.severity.upper()} {finding.code}: {finding.message}"
            )
        for key in resolved:
            self.finding_lines.append(f"resolve finding {self.describe_key(key)}")
        persisting = tuple(f for f in findings if f.key in open_keys)
        return LedgerChange(new, persisting, resolved)

    async def alert_data_loss(self, new_findings: Sequence[Finding]) -> None:
        return None

    def who(self, user_id: str) -> str:
        user = self.tenant.users.get(user_id)
        return f"{user.display_name} <{user.user_principal_name}>" if user else f"user {user_id}"

    def because(self, decision: ReprocessNow) -> str:
        """The decision's reason by name: the policy writes group and SKU ids (the core knows
        no names); the plan names them as its other lines do."""
        reason = decision.reason
        for cause in decision.causes:
            if cause.group_id and cause.group_id in self.tenant.groups:
                reason = reason.replace(cause.group_id, self.names.group(cause.group_id))
            if cause.sku_id:
                reason = reason.replace(cause.sku_id, self.names.product(cause.sku_id))
        return reason

    def describe_key(self, key: str) -> str:
        """A ledger key (subject|sku|code|group) by name: code, user, product, group."""
        subject, sku_id, code, group_id = ([*key.split("|"), "-", "-", "-"])[:4]
        parts = [code, self.who(subject) if ":" not in subject else subject]
        if sku_id != "-":
            parts.append(self.names.product(sku_id))
        if group_id != "-":
            parts.append(self.names.group(group_id))
        return ", ".join(parts)
