"""Reprocess asked for by an admin (`license-guard reprocess`): chosen users, or the members
of one group in error or waiting for it, through the same safety as the service's own writes.

Every user's causes are the findings Entra's reprocess can clear (an error state of a
group's license, a license from a group that is missing or out of date; not an error on a direct
assignment, which a reprocess does not re-run). Nothing is written unless settings allow it for
the user's groups at this moment (mode `act`, the `WRITES_DISABLED` kill switch off, the
`ACT_GROUP_ALLOWLIST`), the causes are recorded in the reprocess ledger like the service's own,
and the call goes through the reprocess worker and its tenant-wide brake (a braked call is
queued for the worker with its delay), with the admin's sign-in: the pause the app's refused
writes set does not hold it back (`shared.service.refused_writes`); a call that fails (Graph
refused the admin, an outage) fails the command and leaves nothing queued for the app. With
`dry_run` nothing is written at all.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from shared.core.findings import (
    COUNT_VIOLATION,
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    REPORTED_CODES,
    STALE_GROUP_ASSIGNMENT,
    Finding,
)
from shared.core.model import Tenant
from shared.core.reprocess import Cause, TenantFacts, policy_cause
from shared.core.user_decisions import unused_seats
from shared.ports.directory import DirectoryError
from shared.ports.licensed_world import LicensedWorld
from shared.ports.messages import ReprocessUser
from shared.service.reconcile.scan import (
    evaluate_page,
    member_index,
    read_world,
    unlicensed_state_groups,
)
from shared.service.reprocessing import reprocess_user
from shared.service.services import Services
from shared.service.stores import REQUEST, ReprocessLedger, cause_token

FIXABLE = REPORTED_CODES | {PENDING_GROUP_ASSIGNMENT, STALE_GROUP_ASSIGNMENT, PLAN_MISMATCH}
REASON = "requested by an admin (license-guard reprocess)"

WOULD = "would reprocess"
CALLED = "called"
QUEUED = "queued (braked)"
BLOCKED = "not allowed"
NOTHING = "nothing to reprocess"
UNKNOWN = "not found"

DIRECT_ONLY = (
    "errors on direct assignments only: a reprocess re-runs group-based assignments only; "
    "fix the cause and assign the license again"
)


class UnknownGroup(LookupError):
    """The --group is not a licensed group of the tenant."""


class ReprocessFailed(Exception):
    """Graph refused or failed the call for one user (`error`): the request stops there;
    `done` are the users called (or queued for the worker) before it."""

    def __init__(self, user: str, error: DirectoryError, done: Sequence[ManualOutcome]) -> None:
        super().__init__(f"{user}: {error}")
        self.user = user
        self.error = error
        self.done = tuple(done)


@dataclass(frozen=True, slots=True)
class ManualOutcome:
    user: str
    """The user as an admin reads it: display name <UPN>, or what was typed when not found."""
    status: str
    detail: str
    findings: tuple[Finding, ...] = ()


async def manual_reprocess(
    svc: Services,
    users: Sequence[str] = (),
    group: str | None = None,
    *,
    dry_run: bool = False,
) -> list[ManualOutcome]:
    """Reprocess `users` (ids or UPNs) or `group`'s members in error or waiting for it."""
    counted_at = svc.now()  # before the SKUs are read: a reprocess done since holds its seat
    world = await read_world(svc.directory)
    index = member_index(world)
    wanted_group = _find_group(world, group) if group else None
    found = await svc.directory.users_by_id(list(users)) if users else {}
    outcomes = [
        ManualOutcome(u, UNKNOWN, "no such user in the tenant") for u in users if u not in found
    ]
    if wanted_group is not None:
        # In Graph's order, not a set's: the list (and which users the seats left go to)
        # must not change from one run to the next.
        in_error = dict.fromkeys(await svc.directory.members_with_license_errors(wanted_group))
        member_ids = world.members.get(wanted_group, ())
        members = [*in_error, *(m for m in member_ids if m not in in_error)]
        found = await svc.directory.users_by_id(members)
    documents = list(found.values())  # the same user by id and by UPN: evaluated once
    if not documents:
        return outcomes
    # States from groups that lost their licenses: read as the nightly and the user pipeline
    # read them, so a stale one says "no longer assigns", not "no longer exists".
    unlicensed = await unlicensed_state_groups(svc.directory, world, documents)
    tenant, evaluation = evaluate_page(world, index, documents, unlicensed)
    ledger = ReprocessLedger(svc.tables.reprocessledger, seats_counted_at=counted_at)
    seats = Seats(unused_seats(tenant), ledger.seats_in_flight_by_user(now=svc.now()))
    processing = {g.id: g.processing_state for g in tenant.groups.values()}
    for report in evaluation.users:
        user = report.user
        who = f"{user.display_name} <{user.user_principal_name}>"
        fixable = [
            f
            for f in report.findings
            if f.code in FIXABLE and (wanted_group is None or f.group_id == wanted_group)
        ]
        # reprocessLicenseAssignment re-runs group-based assignments only (the policy alerts
        # instead for a direct one): an error on a direct assignment is no cause to call for.
        findings = tuple(f for f in fixable if f.group_id is not None)
        if not findings:
            if fixable:
                outcomes.append(ManualOutcome(who, NOTHING, DIRECT_ONLY, tuple(fixable)))
            elif wanted_group is None:
                outcomes.append(ManualOutcome(who, NOTHING, "no error or waiting assignment"))
            continue
        group_ids = frozenset(f.group_id for f in findings if f.group_id)
        blocked = svc.settings.write_blocked_reason(group_ids)
        free = seats.free_for(user.id)
        facts = TenantFacts(now=svc.now(), free_seats=free, group_processing=processing)
        warning = _no_seats(tenant, findings, free)
        if blocked:
            outcomes.append(ManualOutcome(who, BLOCKED, blocked, findings))
            continue
        seats.take(user.id, findings, free)
        if dry_run:
            outcomes.append(ManualOutcome(who, WOULD, _codes(findings) + warning, findings))
        else:
            # The evidence the policy decides on (`policy_cause`: the watched evidence, the
            # seats and processing gates with their `after=`), as its own rows record it: a row
            # with other evidence (`failedWith=`, no gate) read as a change, or as a closed
            # gate's entry, and the service reprocessed the user again for the cause tried.
            history = ledger.history(user.id)
            causes = tuple(dict.fromkeys(policy_cause(f, history, facts) for f in findings))
            try:
                called = await _call(svc, user.id, who, causes, findings)
            except DirectoryError as exc:
                done = [o for o in outcomes if o.status in (CALLED, QUEUED)]
                raise ReprocessFailed(who, exc, done) from exc
            outcomes.append(replace(called, detail=called.detail + warning))
    return outcomes


@dataclass
class Seats:
    """Free seats per SKU as the command hands them out: Graph's unused seats (enabled -
    consumed) less those promised to reprocesses in flight (the service's queued ones, which
    `consumedUnits` does not show yet; a user's own is theirs) and to the users this command
    reprocessed before (`take`). Counted as Graph's alone, a seat queued for another user
    read as free: the admin was not warned, and the call was recorded as made while seats
    were free, so the service did not reprocess the user once a seat really was."""

    unused: dict[str, int]
    in_flight: dict[str, set[str]]
    taken: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._in_flight = Counter(sku for skus in self.in_flight.values() for sku in skus)

    def free_for(self, user_id: str) -> dict[str, int]:
        promised = self._in_flight + self.taken
        promised.subtract(self.in_flight.get(user_id, ()))  # the user's own is theirs
        return {sku: n - promised[sku] for sku, n in self.unused.items()}

    def take(self, user_id: str, findings: Sequence[Finding], free: Mapping[str, int]) -> None:
        """The free seats (`free`: `free_for` the user) of the user's CountViolations, taken
        by this command's reprocess of them (their own seat in flight is taken already)."""
        own = self.in_flight.get(user_id, set())
        skus = {
            f.sku_id
            for f in findings
            if f.code == COUNT_VIOLATION and f.sku_id and free.get(f.sku_id, 0) > 0
        }
        self.taken.update(skus - own)


def _no_seats(tenant: Tenant, findings: Sequence[Finding], free: Mapping[str, int]) -> str:
    """The what-if's seat prediction before the write: a CountViolation reprocessed while the
    product has no free seat (`Seats.free_for`) fails again (Entra assigns only when a seat
    is free)."""
    full = []
    for finding in findings:
        sku = tenant.skus.get(finding.sku_id or "")
        if finding.code == COUNT_VIOLATION and sku and free.get(sku.id, 0) <= 0:
            full.append(sku.part_number)
    if not full:
        return ""
    listed = ", ".join(dict.fromkeys(full))
    return f"; no free seat of {listed} now: expect CountViolation again until seats are freed"


def _codes(findings: Sequence[Finding]) -> str:
    return ", ".join(dict.fromkeys(f.code for f in findings))


async def _call(
    svc: Services, user_id: str, who: str, causes: Sequence[Cause], findings: tuple[Finding, ...]
) -> ManualOutcome:
    correlation_id = f"cli-{uuid.uuid4()}"
    # Each admin request is its own decision: its causes carry the request's id as evidence, so
    # the ledger's "never twice for an unchanged cause" (meant for the service's own retries)
    # does not turn a second request for the same finding into a silent "duplicate".
    causes = [replace(c, evidence=(*c.evidence, f"{REQUEST}{correlation_id}")) for c in causes]
    ledger = ReprocessLedger(svc.tables.reprocessledger)
    now = svc.now()
    for cause in causes:
        ledger.queue(user_id, cause, now=now, correlation_id=correlation_id)
    message = ReprocessUser(
        user_id=user_id,
        causes=tuple(cause_token(c) for c in causes),
        reason=REASON,
        correlation_id=correlation_id,
    )
    try:
        outcome = await reprocess_user(svc, message, by_app=False)  # the admin's sign-in calls
    except BaseException:
        # The command fails and the admin is told so: its rows go too. Left queued and
        # unsent, the user's next recompute sent them ("queued earlier, never sent") and the
        # app made the call under its own identity, unasked and past the policy's gates.
        ledger.release(user_id, message.causes)
        raise
    # The worker took the message (called, or queued it with its delay): the rows are sent,
    # so a later recompute does not resend them as "queued earlier, never sent".
    ledger.mark_sent(user_id, message.causes)
    if outcome.status == "called":
        return ManualOutcome(who, CALLED, _codes(findings), findings)
    if outcome.status in ("braked", "throttled"):
        return ManualOutcome(
            who, QUEUED, f"the worker calls in {outcome.delay_seconds:.0f} s", findings
        )
    if outcome.status == "gone":  # Graph: 404, the user was deleted since it was read
        return ManualOutcome(who, UNKNOWN, "deleted from the tenant since it was read", findings)
    if outcome.status == "blocked":  # the settings changed since they were read
        return ManualOutcome(who, BLOCKED, "writes are no longer allowed for its groups", findings)
    return ManualOutcome(who, outcome.status, _codes(findings), findings)


def _find_group(world: LicensedWorld, text: str) -> str:
    """The id of the licensed group `text` names (its id, else its display name)."""
    wanted = text.strip().lower()
    by_id = [c.id for c in world.configs if c.id.lower() == wanted]
    by_name = [c.id for c in world.configs if (c.display_name or "").lower() == wanted]
    for hits in (by_id, by_name):
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UnknownGroup(f"group '{text}' is ambiguous: give its id")
    raise UnknownGroup(f"group '{text}' is not a licensed group of the tenant")
