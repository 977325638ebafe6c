"""The crash-point harness: one scenario through every handler, crashed at any named point.

The world is the service tests' (demo tenant, `FakeDirectory`, in-memory queues and tables, one
clock), with three port-level fakes that write a shared `trace`: the tables and queues record
each write and send, the directory each Graph write. The crash points report to a
`CrashRecorder` registered in `Services.crash_points` (like any fake: no patching); it records
every point reached and raises `SimulatedCrash` at the one it was asked to.

`Host` plays the Functions host: a queue message whose handler raised stays on its queue and is
delivered again when its visibility timeout ends; a timer that raised is fired again; a webhook
POST that failed is posted again by Graph. `run_scenario` plays a fixed script (a subscription
replacing ours to an old URL, sweep, a joiner, a leaver who loses a mailbox, re-check, tenant
alerts, digest, nightly reconciliation, renewal) with each step at a fixed time, so a run that
crashed (and waited for a redelivery) and a clean run meet at the same moments; `end_state` is
what must match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from shared.bootstrap import in_memory_services
from shared.core.graph_values import format_graph_time
from shared.fakes.blobs import InMemoryBlobStore
from shared.fakes.directory import FakeDirectory
from shared.fakes.queues import in_memory_queues
from shared.fakes.tables import InMemoryTable
from shared.ports.directory import JSON, Subscription, SubscriptionRequest
from shared.ports.messages import DeltaSweep, GroupsChanged, Message, RecomputeUsers, ReprocessUser
from shared.ports.queues import (
    GROUPS_CHANGED,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    MessageQueue,
    Queues,
    ReceivedMessage,
)
from shared.ports.tables import TABLE_NAMES, Entity, EntityValue, Tables, Upserts
from shared.service.alerts.digest import run_digest
from shared.service.groups import handle_group_changes
from shared.service.intake.notifications import accept_change_notifications
from shared.service.poison_watch import watch_poison
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.run_state import Options
from shared.service.reprocessing import reprocess_user
from shared.service.services import Services
from shared.service.subscriptions import (
    SUBSCRIPTION_PK,
    check_subscription_live,
    keep_subscription,
)
from shared.service.tenant_alerts import send_tenant_alerts
from shared.service.users import recompute_users
from shared.service.watch import recheck_errors
from tests.demo_tenant import DIEGO, E3_BASE, E3_TEAMS, EMS, LYNNE
from tests.service.world import CLIENT_STATE, START, TENANT_ID, Clock, demo_snapshot, settings_for

Trace = list[tuple[str, str]]
Inner = TypeVar("Inner", InMemoryTable, MessageQueue)
"""("point", name) | ("write", table) | ("send", queue) | ("graph", operation)."""

SENDER = "megan.bowen@contoso.com"
RECIPIENT = "it-licensing@contoso.com"
REDELIVERY_SECONDS = 30
"""The host's visibilityTimeout: a failed message is seen again after this long."""
STEP = timedelta(hours=6)
"""Scenario steps start this far apart; each step's work (and its redeliveries) must finish
well within it, so a crashed run and a clean run start every step at the same moment."""


class SimulatedCrash(BaseException):
    """The worker died here (raised by `CrashRecorder` at the chosen point). A BaseException,
    like the process's death it stands for: no `except Exception` in the service catches it."""


@dataclass
class CrashRecorder:
    """`CrashPoints` for tests: records the points reached, raises at `crash_at` once."""

    trace: Trace
    crash_at: str | None = None
    crashed: bool = False

    def reached(self, name: str) -> None:
        self.trace.append(("point", name))
        if name == self.crash_at and not self.crashed:
            self.crashed = True
            raise SimulatedCrash(name)


class _Journal(Generic[Inner]):
    """A table or queue that passes everything to `inner` and records some calls in the trace."""

    def __init__(self, inner: Inner, trace: Trace) -> None:
        self._inner, self._trace = inner, trace

    @property
    def name(self) -> str:
        return self._inner.name

    def _record(self, kind: str) -> None:
        self._trace.append((kind, self._inner.name))


class JournalTable(_Journal[InMemoryTable]):
    """An `EntityStore` that records its writes in the trace (a fake of our table port)."""

    def _write(self) -> None:
        self._record("write")

    def get(self, pk: str, rk: str) -> Entity | None:
        return self._inner.get(pk, rk)

    def insert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._write()
        return self._inner.insert(pk, rk, fields)

    def upsert(self, pk: str, rk: str, fields: Mapping[str, EntityValue | None]) -> str:
        self._write()
        return self._inner.upsert(pk, rk, fields)

    def update(
        self, pk: str, rk: str, fields: Mapping[str, EntityValue | None], *, etag: str
    ) -> str:
        self._write()
        return self._inner.update(pk, rk, fields, etag=etag)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._write()
        self._inner.delete(pk, rk, etag=etag)

    def write_batch(self, pk: str, upserts: Upserts, deletes: Iterable[str] = ()) -> None:
        self._write()
        self._inner.write_batch(pk, upserts, deletes)

    def query(self, pk: str) -> list[Entity]:
        return self._inner.query(pk)

    def query_all(self) -> Iterator[Entity]:
        return self._inner.query_all()

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        return self._inner.query_where(field, values)


class JournalQueue(_Journal[MessageQueue]):
    """A `MessageQueue` that records its sends in the trace."""

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        self._record("send")
        self._inner.send(msg, visibility_timeout=visibility_timeout)

    def receive(self, max_messages: int = 1, *, visibility_timeout: int = 30) -> Any:
        return self._inner.receive(max_messages, visibility_timeout=visibility_timeout)

    def delete(self, received: ReceivedMessage) -> None:
        self._inner.delete(received)

    def peek_raw(self, n: int = 32) -> list[str]:
        return self._inner.peek_raw(n)

    def approximate_count(self) -> int:
        return self._inner.approximate_count()


class JournalDirectory(FakeDirectory):
    """The fake Graph, recording each write in the trace (reads are free to repeat)."""

    trace: Trace

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        self.trace.append(("graph", "reprocess"))
        return await super().reprocess_license_assignment(user_id)

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        self.trace.append(("graph", "sendMail"))
        await super().send_mail(sender, message, save_to_sent_items=save_to_sent_items)

    async def create_draft(self, sender: str, mime: bytes) -> str:
        self.trace.append(("graph", "createDraft"))
        return await super().create_draft(sender, mime)

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        self.trace.append(("graph", "sendDraft"))
        return await super().send_draft(sender, draft_id)

    async def create_subscription(self, request: SubscriptionRequest) -> Subscription:
        self.trace.append(("graph", "createSubscription"))
        return await super().create_subscription(request)

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        self.trace.append(("graph", "renewSubscription"))
        return await super().renew_subscription(subscription_id, expiration)

    async def delete_subscription(self, subscription_id: str) -> None:
        self.trace.append(("graph", "deleteSubscription"))
        await super().delete_subscription(subscription_id)


class SmallPages(JournalDirectory):
    def __init__(self, snapshot: Mapping[str, Any], *, now: Callable[..., Any]) -> None:
        super().__init__(snapshot, now=now, page_size=5)


@dataclass
class Host:
    """The Functions host's part: deliveries, redeliveries after a crash, timers."""

    svc: Services
    clock: Clock
    directory: JournalDirectory
    blobs: InMemoryBlobStore
    trace: Trace
    recorder: CrashRecorder
    handled: Counter[str] = field(default_factory=Counter)

    async def _once(self, run: Callable[[], Awaitable[object]]) -> bool:
        self.trace.append(("handler", getattr(run, "__name__", "?")))
        try:
            await run()
        except SimulatedCrash:
            return False
        return True

    async def fire(self, run: Callable[[], Awaitable[object]]) -> None:
        """A timer (or a webhook POST): after a crash, the next firing (or Graph's retry)."""
        while not await self._once(run):
            self.clock.advance(60)

    async def drain(self, until: float = 5 * 3600) -> None:
        """Deliver every message (and every redelivery) for at most `until` seconds."""
        handlers: dict[str, Callable[[Message], Awaitable[object]]] = {
            GROUPS_CHANGED: self._groups,
            RECOMPUTE_USERS: self._recompute,
            REPROCESS_USER: self._reprocess,
        }
        waited = 0.0
        while True:
            busy = False
            for name, handle in handlers.items():
                queue = self.svc.queues.by_name(name)
                for received in queue.receive(1, visibility_timeout=REDELIVERY_SECONDS):
                    busy = True
                    assert received.message is not None, received.error
                    message = received.message
                    if await self._once(lambda m=message, h=handle: h(m)):  # type: ignore[misc]
                        queue.delete(received)
                        self.handled[name] += 1
            if busy:
                continue
            if not any(q.approximate_count() for q in self.svc.queues.all()) or waited >= until:
                return
            self.clock.advance(REDELIVERY_SECONDS)
            waited += REDELIVERY_SECONDS

    async def _groups(self, msg: Message) -> object:
        assert isinstance(msg, GroupsChanged | DeltaSweep)
        return await handle_group_changes(self.svc, msg)

    async def _recompute(self, msg: Message) -> object:
        assert isinstance(msg, RecomputeUsers)
        return await recompute_users(self.svc, msg)

    async def _reprocess(self, msg: Message) -> object:
        assert isinstance(msg, ReprocessUser)
        return await reprocess_user(self.svc, msg)


def build_host(crash_at: str | None = None) -> Host:
    trace: Trace = []
    clock = Clock()
    directory = SmallPages(demo_snapshot(), now=clock.now)
    directory.trace = trace
    plain = in_memory_queues(clock=clock.monotonic)
    queues = Queues(
        groups_changed=JournalQueue(plain.groups_changed, trace),
        recompute_users=JournalQueue(plain.recompute_users, trace),
        reprocess_user=JournalQueue(plain.reprocess_user, trace),
        sync_completed=JournalQueue(plain.sync_completed, trace),
        subscription_lifecycle=JournalQueue(plain.subscription_lifecycle, trace),
        poison=plain.poison,
    )
    tables = Tables(*(JournalTable(InMemoryTable(name), trace) for name in TABLE_NAMES))
    recorder = CrashRecorder(trace, crash_at)
    blobs = InMemoryBlobStore(now=clock.now)
    svc = in_memory_services(
        settings_for(
            LICENSE_GUARD_MODE="act",
            ALERT_SENDER=SENDER,
            ALERT_RECIPIENTS=RECIPIENT,
            BASELINE="off",
            ALERT_GRACE_MINUTES="0",
        ),
        directory,
        clock=clock.now,
        queues=queues,
        tables=tables,
        blobs=blobs,
        crash_points=recorder,
    )
    return Host(svc, clock, directory, blobs, trace, recorder)


def _notification(host: Host, group_id: str) -> bytes:
    [subscription_id] = [e.row_key for e in host.svc.tables.subscriptions.query(SUBSCRIPTION_PK)]
    item = {
        "subscriptionId": subscription_id,
        "clientState": CLIENT_STATE,
        "changeType": "updated",
        "resource": f"Groups/{group_id}",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Group", "id": group_id},
        "subscriptionExpirationDateTime": "2026-12-20T00:00:00Z",
        "tenantId": TENANT_ID,
    }
    return json.dumps({"value": [item]}).encode()


async def _intake(host: Host, group_id: str) -> None:
    body = _notification(host, group_id)

    async def post() -> None:
        accept_change_notifications(host.svc, body)

    await host.fire(post)


async def run_scenario(host: Host) -> None:
    """The script; each step at START + k * STEP (never earlier than the previous finished)."""
    svc, directory = host.svc, host.directory
    steps: list[Callable[[], Awaitable[None]]] = []

    async def subscribe() -> None:
        # Ours from an earlier deployment, to a URL no longer configured: the keeper
        # replaces it (create, record, delete the old one, sweep).
        old = await FakeDirectory.create_subscription(
            directory,
            SubscriptionRequest(
                resource="/groups",
                change_type="updated,deleted",
                notification_url="https://guard-old.example.net/api/graph/notifications",
                lifecycle_notification_url="https://guard-old.example.net/api/graph/lifecycle",
                client_state=CLIENT_STATE,
                expiration=format_graph_time(host.clock.now() + timedelta(days=10)),
            ),
        )
        svc.tables.subscriptions.upsert(SUBSCRIPTION_PK, old.id, {"resource": old.resource})
        await host.fire(lambda: keep_subscription(svc))

    async def seats_bought() -> None:
        [ems] = [s for s in directory.skus if s["skuId"] == EMS]
        ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + 5
        await host.fire(lambda: recheck_errors(svc))

    async def joiner() -> None:
        directory.add_member(E3_TEAMS, LYNNE)
        await _intake(host, E3_TEAMS)

    async def leaver() -> None:
        directory.remove_member(E3_BASE, DIEGO)
        await _intake(host, E3_BASE)

    async def tenant_alerts() -> None:
        await host.fire(lambda: check_subscription_live(svc))

        async def watch() -> None:
            watch_poison(svc)

        await host.fire(watch)
        await host.fire(lambda: send_tenant_alerts(svc))

    async def digest() -> None:
        await host.fire(lambda: run_digest(svc))

    async def nightly() -> None:
        await host.fire(lambda: reconcile_nightly(svc, host.blobs, Options()))

    async def renew() -> None:
        host.clock.at = START + timedelta(days=27, hours=12)
        await host.fire(lambda: keep_subscription(svc))

    steps = [
        subscribe,
        seats_bought,
        joiner,
        leaver,
        tenant_alerts,
        digest,
        nightly,
        tenant_alerts,
        renew,
    ]
    for k, step in enumerate(steps):
        scheduled = START + k * STEP
        assert host.clock.at <= scheduled, f"step {k} starts late: {host.clock.at}"
        host.clock.at = scheduled
        await step()
        await host.drain()
        # The tenant-alerts timer fires every 10 minutes: what a step left owed goes out now.
        await host.fire(lambda: send_tenant_alerts(svc))


def end_state(host: Host) -> dict[str, Any]:
    """What a crash must not change: findings, reprocess ledger, Graph writes, mails, the
    subscription, member sets, and empty queues."""
    tables = host.svc.tables
    findings = sorted(
        (e.partition_key, e.row_key, bool(e.fields.get("resolvedAt")))
        for e in tables.findings.query_all()
    )
    # By cause key, not token: the token carries the evidence (e.g. free seats at decision
    # time), which a redelivery minutes later may see differently.
    ledger = sorted(
        Counter(
            (
                e.partition_key,
                *(str(e.fields.get(k)) for k in ("code", "skuId", "groupId")),
                str(e.fields.get("status")),
            )
            for e in tables.reprocessledger.query_all()
        ).items()
    )
    members = sorted((e.partition_key, e.row_key) for e in tables.groupmembers.query_all())
    mails = Counter(_mail_id(m["message"]) for m in host.directory.sent_mail)
    return {
        "findings": findings,
        "reprocessLedger": ledger,
        "reprocessCalls": sorted(Counter(host.directory.reprocessed).items()),
        "mailKinds": sorted(Counter(i.split("-")[0] for i in mails).items()),
        "mailResends": sum(n - 1 for n in mails.values()),
        "draftsLeft": len(host.directory.drafts),
        "subscriptions": len(host.directory._subs),
        "ourSubscriptions": len(tables.subscriptions.query(SUBSCRIPTION_PK)),
        "members": members,
        "queued": sum(q.approximate_count() for q in host.svc.queues.all()),
    }


def _mail_id(message: JSON) -> str:
    for header in message.get("internetMessageHeaders") or ():
        if header.get("name") == "x-license-guard-digest":
            return str(header.get("value"))
    return "?"


def points_reached(trace: Trace) -> list[str]:
    return [name for kind, name in trace if kind == "point"]


def unguarded_steps(trace: Trace) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Within one handler run, consecutive effects with no crash point between them where at
    least one is a queue send or a Graph write (the steps whose order matters: act, then
    record). Writes to several tables in a row count as one "save" step."""
    out = []
    last: tuple[str, str] | None = None
    for entry in trace:
        if entry[0] in ("point", "handler"):
            last = None
            continue
        both_saves = last is not None and last[0] == entry[0] == "write"
        if last is not None and entry != last and not both_saves:
            out.append((last, entry))
        last = entry
    return out
