"""Issue 10's work-loss windows, one test each: a single failure at the wrong moment used to
lose work for good (defects 1, 2, 6, 8, 9, 11). Failures are injected at the port boundary
(a fake Graph that fails once, a queue or table that refuses once) or at a named crash point.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.fakes.directory import FakeDirectory
from shared.fakes.tables import InMemoryTable, in_memory_tables
from shared.ports.directory import DirectoryError
from shared.ports.messages import (
    DeltaSweep,
    GroupsChanged,
    Message,
    RecomputeUsers,
    ReprocessUser,
    SyncCompleted,
)
from shared.ports.queues import RECOMPUTE_USERS, REPROCESS_USER, MessageQueue, Queues
from shared.ports.tables import EntityValue, Tables
from shared.service.groups import handle_group_changes
from shared.service.poison_watch import SUBSCRIPTION_MISSING, watch_poison
from shared.service.reprocessing import reprocess_user
from shared.service.stores import CALLING, DONE, QUEUED, STALE_CLAIM
from shared.service.subscriptions import check_subscription_live, keep_subscription
from shared.service.tenant_alerts import send_tenant_alerts
from shared.service.users import recompute_users
from shared.service.watch import on_sync_completed
from tests.alerts.mail import mails
from tests.alerts.test_immediate import recompute, sales, with_mailbox_group
from tests.alerts.world import alert_world
from tests.demo_tenant import E3_TEAMS, EMS, IRVIN
from tests.reconcile.conftest import Nightly, SmallPages, crashed_at
from tests.reliability.harness import CrashRecorder, SimulatedCrash
from tests.service.world import TENANT_ID, World, build_world

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RefusesOnce:
    """A queue (of our port) whose next send of `kind` fails, as a storage outage would."""

    def __init__(self, inner: MessageQueue, kind: type[Message]) -> None:
        self.inner, self.kind, self.failed = inner, kind, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        if isinstance(msg, self.kind) and not self.failed:
            self.failed = True
            raise ConnectionError("queue storage unavailable")
        self.inner.send(msg, visibility_timeout=visibility_timeout)


def refuse_next_send(world: World, queue: str, kind: type[Message]) -> None:
    q = world.svc.queues
    wrapped = {
        name: RefusesOnce(getattr(q, name), kind) if getattr(q, name).name == queue else None
        for name in (
            "groups_changed",
            "recompute_users",
            "reprocess_user",
            "sync_completed",
            "subscription_lifecycle",
        )
    }
    world.svc.queues = Queues(
        **{n: w or getattr(q, n) for n, w in wrapped.items()},  # type: ignore[arg-type]
        poison=q.poison,
    )


class FailingTable(InMemoryTable):
    """A table whose writes fail while `down` (the brake's storage, say)."""

    down = False

    def upsert(self, pk: str, rk: str, fields: Any) -> str:
        self._check()
        return super().upsert(pk, rk, fields)

    def insert(self, pk: str, rk: str, fields: Any) -> str:
        self._check()
        return super().insert(pk, rk, fields)

    def update(self, pk: str, rk: str, fields: dict[str, EntityValue | None], *, etag: str) -> str:
        self._check()
        return super().update(pk, rk, fields, etag=etag)

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("table storage unavailable")


class ReprocessFailsOnce(FakeDirectory):
    """Graph answers the first reprocess with `status` (`applied`: after doing it)."""

    status = 503
    applied = False

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        if not getattr(self, "failed", False):
            self.failed = True
            if self.applied:
                await super().reprocess_license_assignment(user_id)
            raise DirectoryError(self.status, "Unavailable", "lost response")
        return await super().reprocess_license_assignment(user_id)


class AppliedThenLost(ReprocessFailsOnce):
    applied = True


async def queued_reprocess(world: World) -> ReprocessUser:
    """Irvin's CountViolation with a seat free: one ReprocessUser on the queue."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    [ems] = [s for s in world.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + 1
    msg = RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="rc")
    await recompute_users(world.svc, msg)
    [queued] = world.messages(REPROCESS_USER)
    assert isinstance(queued, ReprocessUser)
    return queued


async def failed_then_changed_by(
    world: World, actor: str, app_id: str | None = None
) -> ReprocessUser:
    """Irvin's reprocess call failed (`ReprocessFailsOnce`), and `actor` (an app: `app_id`)
    then changed his licenses: the audit log's "Change user license" is not our call's."""
    msg = await queued_reprocess(world)
    with pytest.raises(DirectoryError):
        await reprocess_user(world.svc, msg)
    world.directory.record_audit(
        "Change user license",
        [{"id": IRVIN, "type": "User"}],
        actor=actor,
        category="UserManagement",
        app_id=app_id,
    )
    return msg


def statuses(world: World) -> list[object]:
    return [e.fields["status"] for e in world.svc.tables.reprocessledger.query(IRVIN)]


async def redeliver_until_done(world: World, msg: ReprocessUser) -> list[str]:
    """The host's retries: the message again (and what it re-queued) until nothing is left."""
    outcomes = []
    pending: list[Message] = [msg]
    for _ in range(10):
        for message in pending:
            assert isinstance(message, ReprocessUser)
            try:
                outcomes.append((await reprocess_user(world.svc, message)).status)
            except (DirectoryError, ConnectionError):
                outcomes.append("raised")
                world.svc.send(message)  # redelivered after its visibility timeout
        world.clock.advance(STALE_CLAIM.total_seconds() + 1)
        pending = world.messages(REPROCESS_USER)
        if not pending:
            break
    return outcomes


# --------------------------------------------------------------------------- defect 1


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        pytest.param(
            ReprocessFailsOnce,
            ["raised", "called"],
            id="a-failed-reprocess-call-is-retried-and-calls-once",
        ),
        # Graph did it, the answer was lost (503 after apply): the audit log says so.
        pytest.param(
            AppliedThenLost,
            ["raised", "verified"],
            id="a-lost-response-after-graph-applied-the-reprocess-is-not-called-again",
        ),
    ],
)
async def test_a_reprocess_that_raised_is_redelivered_and_applied_once(
    fake: type[FakeDirectory], expected: list[str]
) -> None:
    world = build_world(fake=fake, LICENSE_GUARD_MODE="act")
    msg = await queued_reprocess(world)

    outcomes = await redeliver_until_done(world, msg)

    assert outcomes == expected
    assert world.directory.reprocessed == [IRVIN]
    assert world.directory.requests["reprocess_license_assignment"] == 1
    assert statuses(world) == [DONE]


class ReprocessRefusedOnce(ReprocessFailsOnce):
    status = 400  # Graph refused the request: it did nothing (a 401/403 is not retried at all)


async def test_a_reprocess_graph_refused_is_called_again_without_asking_the_audit_log() -> None:
    """Only a 5xx or a dropped connection may have reached the user (docs/reliability.md);
    a 4xx answer is Graph's refusal, so the retry has nothing to verify."""
    world = build_world(fake=ReprocessRefusedOnce, LICENSE_GUARD_MODE="act")
    msg = await queued_reprocess(world)

    outcomes = await redeliver_until_done(world, msg)

    assert outcomes == ["raised", "called"]
    assert world.directory.requests["directory_audits"] == 0
    assert world.directory.reprocessed == [IRVIN]


async def test_group_based_licensing_changing_the_user_is_not_taken_for_our_call() -> None:
    """Entra's own processing writes "Change user license" too: only our app's entry counts."""
    world = build_world(fake=ReprocessFailsOnce, LICENSE_GUARD_MODE="act")
    msg = await failed_then_changed_by(world, "Microsoft Entra group-Based Licensing")

    assert (await reprocess_user(world.svc, msg)).status == "called"
    assert world.directory.reprocessed == [IRVIN]


async def test_a_brake_storage_failure_gives_the_claim_back() -> None:
    tables = in_memory_tables()
    brake = FailingTable("servicestate")
    world = build_world(LICENSE_GUARD_MODE="act")
    world.svc.tables = Tables(
        tables.deltalinks,
        tables.groupmembers,
        tables.subscriptions,
        tables.findings,
        tables.reprocessledger,
        brake,
    )
    msg = await queued_reprocess(world)
    brake.down = True
    with pytest.raises(ConnectionError):
        await reprocess_user(world.svc, msg)
    assert statuses(world) == [QUEUED]
    brake.down = False

    assert (await reprocess_user(world.svc, msg)).status == "called"
    assert world.directory.reprocessed == [IRVIN]


async def test_a_worker_that_died_holding_the_claim_does_not_lose_the_reprocess() -> None:
    world = build_world(LICENSE_GUARD_MODE="act")
    msg = await queued_reprocess(world)
    world.svc.crash_points = CrashRecorder([], crash_at="reprocess.after_claim")
    with pytest.raises(SimulatedCrash):
        await reprocess_user(world.svc, msg)
    assert statuses(world) == [CALLING]

    outcomes = await redeliver_until_done(world, msg)

    assert outcomes == ["busy", "called"]  # waited for the lease, then called
    assert world.directory.reprocessed == [IRVIN]


async def test_a_failed_send_of_a_queued_reprocess_is_sent_on_the_redelivery() -> None:
    world = build_world(LICENSE_GUARD_MODE="act")
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    [ems] = [s for s in world.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + 1
    refuse_next_send(world, REPROCESS_USER, ReprocessUser)
    msg = RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="rc")
    with pytest.raises(ConnectionError):
        await recompute_users(world.svc, msg)
    assert statuses(world) == [QUEUED]
    assert world.messages(REPROCESS_USER) == []

    await recompute_users(world.svc, msg)  # the host's retry of the same message
    [sent] = world.messages(REPROCESS_USER)
    assert isinstance(sent, ReprocessUser)
    assert (await reprocess_user(world.svc, sent)).status == "called"
    assert world.directory.reprocessed == [IRVIN]


# --------------------------------------------------------------------------- defect 2


async def test_a_failed_recompute_send_does_not_lose_the_group_change() -> None:
    world = build_world()
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    group = E3_TEAMS
    world.directory.add_member(group, IRVIN)
    change = GroupsChanged(
        group_ids=(group,), correlation_id="c1", received_at="2026-11-24T09:00:00Z"
    )
    refuse_next_send(world, RECOMPUTE_USERS, RecomputeUsers)
    with pytest.raises(ConnectionError):
        await handle_group_changes(world.svc, change)

    outcome = await handle_group_changes(world.svc, change)  # the retry

    assert IRVIN in outcome.users
    [sent] = world.messages(RECOMPUTE_USERS)
    assert isinstance(sent, RecomputeUsers)
    assert IRVIN in sent.user_ids


# --------------------------------------------------------------------------- defect 6


async def test_a_data_loss_alert_refused_by_graph_is_sent_by_the_next_tenant_alert_run() -> None:
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])  # holds the mailbox
    group = next(g for g, m in world.directory.members.items() if any(x["id"] == user for x in m))
    world.directory.remove_member(group, user)
    for _ in range(3):  # every attempt of this recompute's delivery
        world.directory.fail_next_send_mail(503)
    await recompute(world, [user])
    assert mails(world) == []

    world.clock.advance(600)
    await send_tenant_alerts(world.svc)

    [mail] = [m for m in mails(world) if "data-loss" in m["subject"]]
    assert "data-loss risk for 1 user" in mail["subject"]
    await send_tenant_alerts(world.svc)  # sent once: the next run has nothing owed
    assert len([m for m in mails(world) if "data-loss" in m["subject"]]) == 1


# --------------------------------------------------------------------------- defect 8


async def test_the_dead_man_switch_asks_graph_whether_the_subscription_still_exists() -> None:
    world = build_world()
    await keep_subscription(world.svc)
    assert await check_subscription_live(world.svc) is True
    watch_poison(world.svc)
    assert not _open(world, SUBSCRIPTION_MISSING)

    world.clock.advance(30 * 86400)  # nobody renewed it: Graph deleted it at its expiry
    assert await check_subscription_live(world.svc) is False
    watch_poison(world.svc)

    [finding] = _open(world, SUBSCRIPTION_MISSING)
    assert "no longer exists" in str(finding["message"])


async def test_a_subscription_deleted_in_graph_is_reported_though_our_table_has_it() -> None:
    world = build_world()
    kept = await keep_subscription(world.svc)
    await world.directory.delete_subscription(kept.subscription_id)

    assert await check_subscription_live(world.svc) is False
    watch_poison(world.svc)

    [finding] = _open(world, SUBSCRIPTION_MISSING)
    assert "no longer exists" in str(finding["message"])


def _open(world: World, code: str) -> list[dict[str, Any]]:
    return [
        dict(e.fields)
        for e in world.svc.tables.findings.query_all()
        if e.fields.get("code") == code and not e.fields.get("resolvedAt")
    ]


# --------------------------------------------------------------------------- defect 9


async def test_a_keeper_run_that_died_after_creating_the_subscription_is_finished_next_run() -> (
    None
):
    world = build_world()
    world.svc.crash_points = CrashRecorder([], crash_at="keeper.after_create")
    with pytest.raises(SimulatedCrash):
        await keep_subscription(world.svc)
    assert world.messages("groups-changed") == []  # the sweep was not sent

    outcome = await keep_subscription(world.svc)

    assert outcome.action == "kept"  # the subscription the dead run created
    [sweep] = world.messages("groups-changed")
    assert isinstance(sweep, DeltaSweep)
    assert world.directory.requests["create_subscription"] == 1


async def test_a_sync_whose_sweep_could_not_be_sent_is_swept_next_time() -> None:
    world = build_world()
    refuse_next_send(world, "groups-changed", DeltaSweep)
    sync = SyncCompleted(
        tenant_id=TENANT_ID, completed_at="2026-11-24T08:30:00Z", source="t", correlation_id="s"
    )
    with pytest.raises(ConnectionError):
        on_sync_completed(world.svc, sync)

    assert on_sync_completed(world.svc, sync) is True  # not "already recorded"
    [sweep] = world.messages("groups-changed")
    assert isinstance(sweep, DeltaSweep)


# --------------------------------------------------------------------------- defect 11


@pytest.mark.parametrize("point", ["reconcile.after_sku_findings", "reconcile.after_page_findings"])
async def test_a_resumed_nightly_run_counts_what_a_clean_run_counts(point: str) -> None:
    clean = Nightly(build_world(fake=SmallPages, BASELINE="off"))
    expected = await clean.run()
    assert expected.summary is not None

    resumed = Nightly(build_world(fake=SmallPages, BASELINE="off"))
    await crashed_at(resumed, point)
    result = await resumed.run()

    assert result.resumed
    assert result.summary is not None
    assert expected.summary.new_findings > 0
    assert result.summary.new_findings == expected.summary.new_findings
    assert result.summary.resolved_findings == expected.summary.resolved_findings
    assert result.summary.findings_by_code == expected.summary.findings_by_code


GRAPH_APP_ID = "6f1c0a52-3b0e-4d8b-9b51-1f0d7c2a9e01"
"""The user-assigned identity that calls Graph (AZURE_CLIENT_ID)."""
STORAGE_APP_ID = "2d9e4c17-8a3f-4e60-b5c2-7e1a0f4b3d22"
"""A second identity for storage (AzureWebJobsStorage__clientId)."""


async def test_the_audit_check_knows_our_call_by_the_identity_that_calls_graph() -> None:
    """Graph and storage may sign in as different identities (two client ids: a valid setup,
    `bootstrap.worker_credentials`): the audit entry of our reprocess names the one that calls
    Graph. Compared with the storage identity's id, our own call went unrecognised and the
    user was reprocessed a second time."""
    world = build_world(
        fake=AppliedThenLost,
        LICENSE_GUARD_MODE="act",
        AzureWebJobsStorage="",
        AzureWebJobsStorage__accountName="stlicenseguard",
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId=STORAGE_APP_ID,
        AZURE_CLIENT_ID=GRAPH_APP_ID,
    )
    world.directory.app_id = GRAPH_APP_ID
    world.directory.app_display_name = "lg-identity"  # a managed identity's own name
    msg = await queued_reprocess(world)

    outcomes = await redeliver_until_done(world, msg)

    assert outcomes == ["raised", "verified"]
    assert world.directory.requests["reprocess_license_assignment"] == 1
    assert statuses(world) == [DONE]


async def test_another_app_changing_the_user_is_not_taken_for_our_call() -> None:
    """With our Graph identity known, only its entries are our calls: another app's (a
    provisioning tool's) "Change user license" on the user is not."""
    world = build_world(fake=ReprocessFailsOnce, LICENSE_GUARD_MODE="act",
                        AZURE_CLIENT_ID=GRAPH_APP_ID)  # fmt: skip
    world.directory.app_id = GRAPH_APP_ID
    msg = await failed_then_changed_by(world, "Contoso provisioning", STORAGE_APP_ID)

    assert (await reprocess_user(world.svc, msg)).status == "called"
    assert world.directory.reprocessed == [IRVIN]
