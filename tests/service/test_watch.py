"""The watch timers: a sweep after each directory sync, the errors re-check, the poison watch."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any

import pytest

from shared.core.graph_values import format_graph_time
from shared.fakes.directory import FakeDirectory
from shared.platform.logging import configure_logging
from shared.ports.directory import DirectoryError
from shared.ports.messages import (
    DeltaSweep,
    GroupsChanged,
    RecomputeUsers,
    SyncCompleted,
    encode_message,
    format_timestamp,
)
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS, MessageQueue, poison_name
from shared.ports.tables import Entity, EntityStore
from shared.service.groups import handle_group_changes
from shared.service.poison_watch import (
    ANNOUNCE_WAIT,
    NOTIFICATIONS_SILENT,
    POISONED_MESSAGE,
    SUBSCRIPTION_MISSING,
    run_poison_watch,
    watch_poison,
)
from shared.service.recheck_waits import UNKNOWN_STATE_RECHECK
from shared.service.stores import FindingsLedger, LicensedGroups, ServiceState
from shared.service.subscriptions import keep_subscription
from shared.service.tenant_alerts import DIRECTORY_SYNC_STALE, check_tenant
from shared.service.users import recompute_users
from shared.service.watch import (
    LAST_SYNC,
    SWEEP_CLAIM_TIME,
    on_sync_completed,
    recheck_errors,
    watch_sync,
)
from tests.adapters.test_findings_ledger_contract import WrittenFirstEachTime
from tests.demo_tenant import (
    ADELE,
    ALEX,
    DIEGO,
    E3_BASE,
    E3_TEAMS,
    EMS,
    EMS_E3,
    ENTERPRISEPACK,
    IRVIN,
    JONI,
    NESTOR,
    SALES_TEAM,
)
from tests.service.world import (
    TENANT_ID,
    World,
    build_world,
    demo_snapshot,
    recomputed_users,
    sweeps,
)

pytestmark = pytest.mark.anyio

OTHER_TENANT = "99999999-8888-4777-8666-555555555555"


def synced(at: str, tenant_id: str = TENANT_ID) -> SyncCompleted:
    return SyncCompleted(
        tenant_id=tenant_id, completed_at=at, source="entra-connect", correlation_id="sync-run"
    )


def open_findings(world: World) -> list[Entity]:
    return [e for e in world.svc.tables.findings.query_all() if not e.fields.get("resolvedAt")]


def open_codes(world: World) -> list[str]:
    return [str(e.fields["code"]) for e in open_findings(world)]


# --------------------------------------------------------------------------- directory sync


def test_a_sync_newer_than_the_last_queues_one_sweep(world: World) -> None:
    assert on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))

    [sweep] = sweeps(world)
    assert sweep.correlation_id == "sync-run"


def test_the_same_sync_reported_again_queues_nothing(world: World) -> None:
    on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    sweeps(world)

    again = on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    older = on_sync_completed(world.svc, synced("2026-11-24T07:00:00Z"))

    assert (again, older) == (False, False)
    assert sweeps(world) == []


def test_the_same_sync_time_written_another_way_is_not_newer(world: World) -> None:
    on_sync_completed(world.svc, synced("2026-11-24T07:30:00+00:00"))
    sweeps(world)

    assert not on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    assert not on_sync_completed(world.svc, synced("2026-11-24T07:30:00.000Z"))
    assert sweeps(world) == []


def test_a_later_sync_within_the_same_second_is_newer(world: World) -> None:
    on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    sweeps(world)

    assert on_sync_completed(world.svc, synced("2026-11-24T07:30:00.500Z"))
    assert len(sweeps(world)) == 1


@pytest.mark.parametrize("earlier", [None, "2026-11-24T07:00:00Z"])
def test_two_deliveries_of_one_sync_at_once_sweep_once(world: World, earlier: str | None) -> None:
    """An HTTP retry after a lost 202 queues the sync twice; two instances take both at once.
    Each reads the watermark before the other writes it: only one may sweep."""
    if earlier is not None:
        on_sync_completed(world.svc, synced(earlier))
        sweeps(world)
    store = world.svc.tables.servicestate
    other_instance = replace(world.svc)  # the same storage and queues, the plain table
    results: list[bool] = []
    racing = WrittenFirstEachTime(
        store,
        [lambda: results.append(on_sync_completed(other_instance, synced("2026-11-24T07:30:00Z")))],
        row_key=LAST_SYNC,
    )
    this_instance = replace(world.svc, tables=replace(world.svc.tables, servicestate=racing))

    results.append(on_sync_completed(this_instance, synced("2026-11-24T07:30:00Z")))  # type: ignore[arg-type]

    assert sorted(results) == [False, True]
    assert len(sweeps(world)) == 1
    recorded = ServiceState(store).get(LAST_SYNC)
    assert recorded is not None
    assert recorded.fields["completedAt"] == "2026-11-24T07:30:00Z"


def test_a_sync_whose_sweep_was_claimed_by_a_worker_that_died_is_swept_by_its_redelivery(
    world: World,
) -> None:
    """The watermark moved (the sweep claimed) and the worker died before sending: the sync's
    redelivery, after the visibility timeout, sends the sweep; a delivery meanwhile does not
    (the claimer may be sending it right now)."""
    ServiceState(world.svc.tables.servicestate).insert(
        LAST_SYNC,
        {
            "completedAt": "2026-11-24T07:30:00Z",
            "source": "entra-connect",
            "sweepClaimedAt": world.clock.now(),
        },
    )

    assert not on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    assert sweeps(world) == []
    world.clock.advance(SWEEP_CLAIM_TIME.total_seconds())
    assert on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))
    assert len(sweeps(world)) == 1
    assert not on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z"))  # marked sent
    assert sweeps(world) == []


def test_a_sync_from_a_foreign_tenant_is_ignored(world: World) -> None:
    assert not on_sync_completed(world.svc, synced("2026-11-24T07:30:00Z", OTHER_TENANT))

    assert sweeps(world) == []


async def test_the_sync_poll_sweeps_when_the_last_sync_time_moves(world: World) -> None:
    first = await watch_sync(world.svc)
    unchanged = await watch_sync(world.svc)
    world.directory.orgs[0]["onPremisesLastSyncDateTime"] = "2026-11-24T08:00:00Z"
    moved = await watch_sync(world.svc)

    assert (first, unchanged, moved) == (True, False, True)
    assert len(sweeps(world)) == 2
    assert world.directory.requests["organization"] == 3


async def test_a_poll_after_the_sync_servers_message_for_the_same_cycle_adds_no_sweep(
    world: World,
) -> None:
    on_sync_completed(world.svc, synced("2026-11-24T07:30:00+00:00"))  # the demo tenant's time
    sweeps(world)

    assert not await watch_sync(world.svc)
    assert sweeps(world) == []


async def test_a_sync_time_in_the_future_does_not_silence_the_syncs_that_follow(
    world: World,
) -> None:
    """A mistyped --completed-at (a year ahead) or a sync server whose clock runs ahead:
    it used to become the watermark, so every real sync before that moment, polled or
    posted, was taken for an old one and swept nothing."""
    assert on_sync_completed(world.svc, synced("2027-11-24T07:30:00Z"))  # the clock: 2026
    sweeps(world)
    world.clock.advance(3600)
    world.directory.orgs[0]["onPremisesLastSyncDateTime"] = "2026-11-24T09:30:00Z"

    assert await watch_sync(world.svc)
    assert on_sync_completed(world.svc, synced("2026-11-24T10:00:00Z"))
    assert len(sweeps(world)) == 2


@pytest.mark.parametrize("later", [0, 60, 20 * 60])
def test_a_sync_time_in_the_future_delivered_again_sweeps_once(world: World, later: int) -> None:
    """The cap moves with our clock, so a redelivery of a future-dated sync (a queue retry, the
    sender's retry after a lost 202) was newer than the capped watermark and swept again."""
    assert on_sync_completed(world.svc, synced("2027-11-24T07:30:00.250Z"))  # the clock: 2026
    sweeps(world)
    world.clock.advance(later)

    assert not on_sync_completed(world.svc, synced("2027-11-24T07:30:00.250+00:00"))
    assert sweeps(world) == []
    assert on_sync_completed(world.svc, synced("2027-11-24T08:00:00Z"))  # its next cycle


async def test_a_future_sync_time_the_old_version_stored_does_not_silence_the_syncs(
    world: World,
) -> None:
    """a3824d1 stored a completedAt in the future as it came (the cap is b8880f2's): after
    the upgrade, that watermark must not go on swallowing every real sync until that moment."""
    ServiceState(world.svc.tables.servicestate).put(
        LAST_SYNC, {"completedAt": "2027-11-24T07:30:00Z", "source": "entra-connect"}
    )
    world.directory.orgs[0]["onPremisesLastSyncDateTime"] = "2026-11-24T09:30:00Z"

    assert await watch_sync(world.svc)
    assert on_sync_completed(world.svc, synced("2026-11-24T10:00:00Z"))
    assert len(sweeps(world)) == 2


async def test_a_tenant_without_directory_sync_never_sweeps_on_the_poll(world: World) -> None:
    world.directory.orgs[0]["onPremisesLastSyncDateTime"] = None

    assert not await watch_sync(world.svc)
    assert sweeps(world) == []


async def test_directory_sync_turned_off_is_no_stale_sync(world: World) -> None:
    # The tenant went cloud-only (Set-EntraDirSyncEnabled -EnableDirSync $false): Graph keeps
    # the last sync time, and no sync will ever follow it.
    assert await watch_sync(world.svc)
    world.directory.orgs[0]["onPremisesSyncEnabled"] = False
    world.clock.advance(2 * 3600)
    check_tenant(world.svc)  # before the poll saw it: stale, as far as it knows

    await watch_sync(world.svc)
    check_tenant(world.svc)

    assert DIRECTORY_SYNC_STALE not in open_codes(world)


async def test_the_sync_servers_messages_do_not_hide_that_no_sync_reaches_entra(
    world: World,
) -> None:
    """The sync server's script posts after every scheduler notice (event 904), whether or
    not anything reached Entra (an export failing, a run by hand). Its times moved the sweep
    watermark the stale-sync finding was judged on, so the finding never came while the
    script posted. It is judged on Graph's own onPremisesLastSyncDateTime, as polled."""
    assert await watch_sync(world.svc)  # Graph: the last sync reached Entra at 07:30
    for _ in range(4):
        world.clock.advance(30 * 60)
        assert on_sync_completed(world.svc, synced(format_graph_time(world.clock.now())))
        assert not await watch_sync(world.svc)  # Graph still says 07:30

    check_tenant(world.svc)

    [stale] = [f for f in open_findings(world) if f.fields["code"] == DIRECTORY_SYNC_STALE]
    assert "2026-11-24 07:30 UTC" in str(stale.fields["message"])


@pytest.mark.parametrize(("days", "policy"), [(1, "Delta"), (8, "Initial")])
async def test_a_stale_sync_past_7_days_is_told_to_run_a_full_sync(
    world: World, days: int, policy: str
) -> None:
    """Microsoft Learn (Entra Connect Sync: Scheduler): a delta sync must follow the last one
    within 7 days, or a full sync is needed to resolve the issues. The remedy said delta always."""
    assert await watch_sync(world.svc)
    world.clock.advance(days * 24 * 3600)
    assert not await watch_sync(world.svc)  # Graph still says the old time

    check_tenant(world.svc)

    [stale] = [f for f in open_findings(world) if f.fields["code"] == DIRECTORY_SYNC_STALE]
    assert f"Start-ADSyncSyncCycle -PolicyType {policy}" in str(stale.fields["remedy"])


async def test_without_a_recent_poll_the_sync_servers_time_is_the_last_sync(
    world: World,
) -> None:
    """Graph's time is believed while the poll reads it; a poll that stopped (a permission
    taken away) leaves the sync server's messages to say when the last sync was."""
    assert await watch_sync(world.svc)
    world.clock.advance(3 * 3600)  # no poll since
    assert on_sync_completed(world.svc, synced(format_graph_time(world.clock.now())))

    check_tenant(world.svc)

    assert DIRECTORY_SYNC_STALE not in open_codes(world)


# --------------------------------------------------------------------------- errors re-check


async def test_the_errors_recheck_recomputes_members_with_license_errors(world: World) -> None:
    outcome = await recheck_errors(world.svc)

    users = recomputed_users(world)
    assert {IRVIN, JONI, NESTOR} <= users
    assert ADELE not in users  # no error, and no open finding yet
    assert users == outcome.users
    assert world.directory.requests["members_with_license_errors"] == len(
        outcome.groups_with_errors
    )


async def test_the_errors_recheck_also_recomputes_users_with_pending_findings(
    world: World,
) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ADELE,), reason="test", correlation_id="first")
    )

    world.clock.advance(UNKNOWN_STATE_RECHECK.total_seconds())
    await recheck_errors(world.svc)

    assert ADELE in recomputed_users(world)


async def test_a_user_waiting_on_a_group_with_no_reported_state_is_rechecked_hourly() -> None:
    """Groups that report no processing state: the re-check (every 15 minutes) re-reads a
    user waiting on one once an hour, not every run."""
    snapshot = demo_snapshot()
    for group in snapshot["groups"]:
        group["licenseProcessingState"] = None
    world = build_world(snapshot)
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ADELE,), reason="test", correlation_id="first")
    )
    assert any(e.partition_key == ADELE for e in open_findings(world))
    world.messages(RECOMPUTE_USERS)

    world.clock.advance(15 * 60)
    await recheck_errors(world.svc)
    assert ADELE not in recomputed_users(world)

    world.clock.advance(UNKNOWN_STATE_RECHECK.total_seconds() - 15 * 60)
    await recheck_errors(world.svc)
    assert ADELE in recomputed_users(world)


async def test_the_errors_recheck_recomputes_users_whose_group_finished_processing_just_now() -> (
    None
):
    """The processing state the re-check goes by is the one it has just read from Graph: the
    store is updated only after the recomputes are sent (crash safety), so reading it back
    would still say QueuedForProcessing and leave the user's finding open."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    world = build_world(snapshot, LICENSE_GUARD_MODE="act")
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    waiting = await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ADELE,), reason="test", correlation_id="first")
    )
    assert waiting.retry_later == [ADELE]  # a finding waits for Base's processing
    world.directory.groups[E3_BASE]["licenseProcessingState"] = {"state": "ProcessingComplete"}

    outcome = await recheck_errors(world.svc)

    assert ADELE in outcome.users
    assert ADELE in recomputed_users(world)


async def test_the_errors_recheck_learns_a_newly_licensed_group_into_a_partition(
    world: World,
) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.directory.set_group_licenses(SALES_TEAM, [{"skuId": ENTERPRISEPACK, "disabledPlans": []}])

    await recheck_errors(world.svc)

    [partition] = LicensedGroups(world.svc.tables.deltalinks).partitions()
    assert SALES_TEAM in partition.group_ids


async def test_the_errors_recheck_recomputes_the_members_of_a_group_whose_licenses_changed(
    world: World,
) -> None:
    """The re-check stores the groups' fresh licenses: after it, neither a sweep nor a late
    notification sees the change any more, so the re-check itself sends the members on."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    world.directory.set_group_licenses(
        E3_TEAMS,
        [{"skuId": ENTERPRISEPACK, "disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"]}],
    )

    outcome = await recheck_errors(world.svc)

    members = set(world.directory.group_member_ids_now(E3_TEAMS))
    assert members <= outcome.users
    assert members <= recomputed_users(world)


async def test_the_errors_recheck_recomputes_the_members_of_a_group_licensed_again(
    world: World,
) -> None:
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.directory.set_group_licenses(EMS_E3, [])
    await recheck_errors(world.svc)  # learns that the group lost its licenses
    world.messages(RECOMPUTE_USERS)
    world.directory.set_group_licenses(EMS_E3, [{"skuId": EMS, "disabledPlans": []}])

    outcome = await recheck_errors(world.svc)

    members = set(world.directory.group_member_ids_now(EMS_E3))
    assert members <= outcome.users
    assert members <= recomputed_users(world)


class LicenseErrorsFilterRejected(FakeDirectory):
    """Graph answers `$filter=hasMembersWithLicenseErrors eq true` with 400, as one user saw
    (https://github.com/microsoftgraph/msgraph-sdk-powershell/issues/2967)."""

    async def groups_with_license_errors(self) -> list[str]:
        self._count("groups_with_license_errors")
        raise DirectoryError(
            400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause"
        )


async def test_the_errors_recheck_goes_on_when_graph_rejects_the_license_errors_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = build_world(fake=LicenseErrorsFilterRejected)
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    recompute = RecomputeUsers(user_ids=(ADELE, IRVIN), reason="test", correlation_id="first")
    await recompute_users(world.svc, recompute)  # ADELE pending, IRVIN a reported error
    caplog.set_level(logging.INFO)
    configure_logging([caplog.handler])

    outcome = await recheck_errors(world.svc)

    assert outcome.groups_with_errors == []
    assert {ADELE, IRVIN} <= recomputed_users(world)
    [unavailable] = [r for r in caplog.records if getattr(r, "event", None) == (
        "errors.groups_with_errors_unavailable")]  # fmt: skip
    assert unavailable.levelno == logging.WARNING
    assert vars(unavailable)["status"] == 400


# --------------------------------------------------------------------------- poison watch


def poisoned(world: World) -> MessageQueue:
    """A subscribed world whose recompute poison queue holds one message that is not ours."""
    world.subscribe()
    poison = world.queue(poison_name(RECOMPUTE_USERS))
    poison.put_raw("not one of our messages")  # type: ignore[attr-defined]
    return poison


def test_a_poisoned_message_becomes_one_finding_and_is_not_reported_twice(
    world: World,
) -> None:
    poison = poisoned(world)

    first = watch_poison(world.svc)
    second = watch_poison(world.svc)

    assert [f.code for f in first.new_findings] == [POISONED_MESSAGE]
    assert "not one of our messages" in first.new_findings[0].message
    assert first.poisoned[RECOMPUTE_USERS] == 1
    assert second.new_findings == []
    assert open_codes(world) == [POISONED_MESSAGE]
    assert poison.approximate_count() == 1  # kept for inspection


def test_two_different_poisoned_messages_are_two_findings(world: World) -> None:
    world.subscribe()
    poison = world.queue(poison_name(GROUPS_CHANGED))
    poison.put_raw(encode_message(DeltaSweep(reason="a", correlation_id="a")))  # type: ignore[attr-defined]
    poison.put_raw(encode_message(DeltaSweep(reason="b", correlation_id="b")))  # type: ignore[attr-defined]

    outcome = watch_poison(world.svc)

    assert len(outcome.new_findings) == 2


def test_no_recorded_subscription_is_a_finding_once(world: World) -> None:
    first = watch_poison(world.svc)
    second = watch_poison(world.svc)

    assert [f.code for f in first.new_findings] == [SUBSCRIPTION_MISSING]
    assert second.new_findings == []
    assert FindingsLedger(world.svc.tables.findings).open_by_code([SUBSCRIPTION_MISSING])


async def test_the_poison_watch_timer_asks_graph_whether_the_recorded_subscription_lives(
    world: World,
) -> None:
    kept = await keep_subscription(world.svc)
    await world.directory.delete_subscription(kept.subscription_id)  # our table still has it

    outcome = await run_poison_watch(world.svc)

    [missing] = [f for f in outcome.new_findings if f.code == SUBSCRIPTION_MISSING]
    assert "no longer exists" in missing.message


def test_with_a_subscription_and_empty_poison_queues_there_is_nothing_to_report(
    world: World,
) -> None:
    world.subscribe()

    outcome = watch_poison(world.svc)

    assert outcome.new_findings == []
    assert set(outcome.poisoned.values()) == {0}
    assert open_codes(world) == []


def test_a_poisoned_message_removed_from_the_poison_queue_resolves_its_finding(
    world: World,
) -> None:
    poison = poisoned(world)
    watch_poison(world.svc)
    for received in poison.receive(32):
        poison.delete(received)

    watch_poison(world.svc)

    assert open_codes(world) == []


def test_the_missing_subscription_finding_resolves_once_a_subscription_exists(
    world: World,
) -> None:
    watch_poison(world.svc)
    world.subscribe()

    watch_poison(world.svc)

    assert open_codes(world) == []


async def test_a_sweep_finding_changes_long_after_the_last_notification_raises_the_dead_man(
    world: World,
) -> None:
    world.subscribe()
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s1"))
    world.directory.add_member(E3_TEAMS, ADELE)
    world.clock.advance(7 * 3600)

    await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id="s2"))
    world.clock.advance(ANNOUNCE_WAIT.total_seconds())  # and no notification of it came
    outcome = watch_poison(world.svc)

    assert [f.code for f in outcome.new_findings] == [NOTIFICATIONS_SILENT]


async def test_the_dead_man_finding_gives_its_times_as_the_mails_do(world: World) -> None:
    world.subscribe()
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s1"))
    world.directory.add_member(E3_TEAMS, ADELE)
    world.clock.advance(7 * 3600 + 0.5)
    await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id="s2"))
    swept = world.clock.now()
    world.clock.advance(ANNOUNCE_WAIT.total_seconds())

    [finding] = watch_poison(world.svc).new_findings

    # not '2026-11-25T00:00:00.500000+00:00': UTC named, to the minute, as the digest writes
    assert f"A sweep at {swept:%Y-%m-%d %H:%M} UTC found" in finding.message
    assert "+00:00" not in finding.message


async def test_a_notification_after_the_silence_resolves_the_dead_man(world: World) -> None:
    world.subscribe()
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s1"))
    world.directory.add_member(E3_TEAMS, ADELE)
    world.clock.advance(7 * 3600)
    await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id="s2"))
    world.clock.advance(ANNOUNCE_WAIT.total_seconds())
    assert NOTIFICATIONS_SILENT in [f.code for f in watch_poison(world.svc).new_findings]

    await handle_group_changes(
        world.svc,
        GroupsChanged(
            group_ids=(E3_TEAMS,),
            correlation_id="n1",
            received_at="2026-11-24T17:00:00Z",
        ),
    )
    watch_poison(world.svc)

    assert NOTIFICATIONS_SILENT not in open_codes(world)


async def notified(world: World, correlation_id: str) -> None:
    """A change notification about E3_TEAMS arrives now."""
    received_at = format_timestamp(world.clock.now())
    changed = GroupsChanged(
        group_ids=(E3_TEAMS,), correlation_id=correlation_id, received_at=received_at
    )
    await handle_group_changes(world.svc, changed)


async def test_a_change_a_sweep_met_before_its_own_notification_is_not_silence(
    world: World,
) -> None:
    # A quiet tenant: the last notification hours ago. The sync's sweep reads a join a minute
    # after Entra wrote it, and the poison watch runs before Graph's notification of that join
    # arrives (its latency is minutes, undocumented): notifications are not silent.
    world.subscribe()
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s1"))
    await notified(world, "n0")
    world.clock.advance(7 * 3600)
    world.directory.add_member(E3_TEAMS, ADELE)
    world.clock.advance(60)
    await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id="s2"))
    world.clock.advance(60)
    early = watch_poison(world.svc)
    world.clock.advance(120)
    await notified(world, "n1")
    world.clock.advance(30 * 60)

    assert early.new_findings == []
    assert watch_poison(world.svc).new_findings == []


async def test_silence_is_raised_though_every_sync_sweep_finds_changes_just_before_a_watch(
    world: World,
) -> None:
    # Notifications are dead in a busy tenant: each half-hourly sync's sweep finds a change,
    # 10 minutes before each poison watch. The latest change is always too recent to judge;
    # the one before it is not.
    world.subscribe()
    await handle_group_changes(world.svc, DeltaSweep(reason="first", correlation_id="s1"))
    found = []
    for n in range(16):  # 8 hours
        world.clock.advance(20 * 60)
        if n % 2:
            world.directory.remove_member(E3_TEAMS, ADELE)
        else:
            world.directory.add_member(E3_TEAMS, ADELE)
        await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id=f"s{n}"))
        world.clock.advance(10 * 60)
        found += [f.code for f in watch_poison(world.svc).new_findings]

    assert found == [NOTIFICATIONS_SILENT]


async def test_changes_found_soon_after_a_notification_are_not_silence(world: World) -> None:
    world.subscribe()
    await handle_group_changes(
        world.svc,
        GroupsChanged(
            group_ids=(E3_TEAMS,), correlation_id="n0", received_at="2026-11-24T09:00:00Z"
        ),
    )
    world.directory.add_member(E3_TEAMS, ADELE)
    world.clock.advance(600)

    await handle_group_changes(world.svc, DeltaSweep(reason="sync", correlation_id="s2"))
    outcome = watch_poison(world.svc)

    assert outcome.new_findings == []


def open_nested_subjects(world: World) -> list[str]:
    return sorted(
        e.partition_key
        for e in world.svc.tables.findings.query_all()
        if e.fields.get("code") == "NestedGroupMember" and not e.fields.get("resolvedAt")
    )


async def test_the_errors_recheck_resolves_and_reopens_the_nesting_of_a_group_that_flips(
    world: World,
) -> None:
    """The re-check is what learns that E3 Base (Sales_Team nested) lost its licenses, then
    got them back: its NestedGroupMember follows, where it stayed open on an unlicensed group
    (and then missing once licensed again) until the nightly. No later sweep or notification
    sees the change once the re-check stored it."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    assert open_nested_subjects(world) == [f"group:{E3_BASE}"]
    licenses = world.directory.groups[E3_BASE]["assignedLicenses"]

    world.directory.set_group_licenses(E3_BASE, [])
    await recheck_errors(world.svc)
    assert open_nested_subjects(world) == []

    world.directory.set_group_licenses(E3_BASE, licenses)
    await recheck_errors(world.svc)
    assert open_nested_subjects(world) == [f"group:{E3_BASE}"]


async def test_a_stale_finding_in_a_finished_group_is_rechecked_ever_less_often(
    world: World,
) -> None:
    """Alex's stale assignment from E3 Base (ProcessingComplete) stays open: the 15-minute
    re-check looks at it when it first sees the group finished, then after a wait that
    doubles (15, 15, 30, 60, 120 minutes ... at most 4 hours), as a processing wait does, not
    at every run."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ALEX,), reason="test", correlation_id="first")
    )
    looks = []
    for run in range(16):  # four hours of the re-check
        world.clock.advance(15 * 60)
        await recheck_errors(world.svc)
        if ALEX in recomputed_users(world):
            looks.append(run)
            await recompute_users(
                world.svc, RecomputeUsers(user_ids=(ALEX,), reason="test", correlation_id="r")
            )

    assert looks == [0, 1, 2, 4, 8]


async def test_a_group_finished_since_the_last_recheck_has_all_its_waiting_users_rechecked() -> (
    None
):
    """One member's recompute reading the group finished (and storing its state) does not
    make the others wait: the re-check looks at every finding not seen since it first saw the
    group finished."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    world = build_world(snapshot)
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ADELE, ALEX), reason="test", correlation_id="first")
    )
    await recheck_errors(world.svc)
    world.messages(RECOMPUTE_USERS)
    world.clock.advance(3 * 3600)
    world.directory.groups[E3_BASE]["licenseProcessingState"] = {"state": "ProcessingComplete"}
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(ADELE,), reason="test", correlation_id="adele")
    )
    world.clock.advance(60)

    await recheck_errors(world.svc)

    assert ALEX in recomputed_users(world)


async def test_a_finding_new_in_a_group_finished_long_ago_is_rechecked_after_15_minutes(
    world: World,
) -> None:
    """The wait grows from when the finding was first seen, not from when the group finished:
    Diego's plan mismatch, first seen hours after E3 Base finished, is looked at again after
    15 minutes, not 4 hours."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    await recheck_errors(world.svc)  # sees E3 Base finished
    world.messages(RECOMPUTE_USERS)
    world.clock.advance(6 * 3600)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(DIEGO,), reason="test", correlation_id="first")
    )
    world.messages(RECOMPUTE_USERS)

    world.clock.advance(15 * 60)
    await recheck_errors(world.svc)

    assert DIEGO in recomputed_users(world)


class CountedScans:
    """The findings table (our port's fake), counting its full scans (`query_all`)."""

    def __init__(self, table: EntityStore) -> None:
        self._table, self.scans = table, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    filtered = 0

    def query_all(self) -> Iterator[Entity]:
        self.scans += 1
        return self._table.query_all()

    def query_where(self, field: str, values: Collection[str]) -> Iterator[Entity]:
        self.filtered += 1
        return self._table.query_where(field, values)


async def test_the_errors_recheck_reads_the_findings_table_once(world: World) -> None:
    """Every 15 minutes: it read the whole table twice (the waiting findings, then the
    Graph-reported errors), a cost that grew with the table. Now one query, filtered by code
    by the table service: the rows of other codes do not cross the network."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    for msg in world.messages(RECOMPUTE_USERS):
        assert isinstance(msg, RecomputeUsers)
        await recompute_users(world.svc, msg)
    table = CountedScans(world.svc.tables.findings)
    world.svc.tables = replace(world.svc.tables, findings=table)
    world.clock.advance(UNKNOWN_STATE_RECHECK.total_seconds())

    outcome = await recheck_errors(world.svc)

    assert (table.scans, table.filtered) == (0, 1)
    assert {IRVIN, ADELE} <= outcome.users  # a reported error; a pending finding


def test_a_poisoned_message_finding_says_the_message_expires_in_7_days(world: World) -> None:
    """The host moves a message to `-poison` with Azure's default time-to-live (7 days): the
    message is gone after that and its finding resolves though nothing was fixed. The admin
    reading "kept for inspection" learnt neither."""
    poisoned(world)

    [finding] = watch_poison(world.svc).new_findings

    assert "7 days" in finding.remedy
    assert "resolves" in finding.remedy
