"""Recompute users: findings into the ledger, and reprocesses queued only when writes may happen."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from shared.ports.messages import DeltaSweep, RecomputeUsers, ReprocessUser
from shared.ports.queues import RECOMPUTE_USERS, REPROCESS_USER
from shared.ports.tables import safe_key
from shared.service.groups import handle_group_changes
from shared.service.stores import FindingsLedger
from shared.service.users import recompute_users
from tests.demo_tenant import ADELE, DIEGO, E3_BASE, EMS, EMS_E3, ENTERPRISEPACK, IRVIN, JONI
from tests.service.test_group_changes import changed, many_licensed_groups
from tests.service.world import World, build_world, demo_snapshot

pytestmark = pytest.mark.anyio

IRVIN_COUNT_VIOLATION = f"{IRVIN}|{EMS}|CountViolation|{EMS_E3}"
ISAIAH = "fc26e74d-678e-539d-9676-e2a854a3f926"  # E1 direct, E3 Base: MutuallyExclusive
ISAIAH_CONFLICT = f"{ISAIAH}|{ENTERPRISEPACK}|MutuallyExclusiveViolation|{E3_BASE}"
SHAREPOINT_PLAN_1 = "c7699d2e-19aa-44de-8edf-1736da088ca1"  # in Office 365 E1


def recompute(*user_ids: str, correlation_id: str = "test-recompute") -> RecomputeUsers:
    return RecomputeUsers(user_ids=user_ids, reason="test", correlation_id=correlation_id)


async def learned(world: World) -> World:
    """The licensed groups and their members are known (a first sweep ran)."""
    await handle_group_changes(world.svc, DeltaSweep(reason="test", correlation_id="sweep"))
    world.messages(RECOMPUTE_USERS)
    return world


def free_ems_seats(world: World, free: int) -> None:
    """Make `free` EMS seats available (5 are consumed in the demo tenant)."""
    [ems] = [s for s in world.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + free


def reprocess_messages(world: World) -> list[ReprocessUser]:
    return world.messages_of(REPROCESS_USER, ReprocessUser)


async def test_findings_go_from_new_to_persisting_to_resolved_and_keep_their_first_sighting(
    world: World,
) -> None:
    await learned(world)
    first_seen = world.clock.now()
    table = world.svc.tables.findings

    first = await recompute_users(world.svc, recompute(IRVIN))
    world.clock.advance(3600)
    second = await recompute_users(world.svc, recompute(IRVIN))
    later = world.clock.now()
    entity = table.get(IRVIN, safe_key(IRVIN_COUNT_VIOLATION))

    assert IRVIN_COUNT_VIOLATION in {f.key for f in first.new_findings}
    assert IRVIN_COUNT_VIOLATION not in {f.key for f in second.new_findings}
    assert entity is not None
    assert entity.fields["firstSeen"] == first_seen
    assert entity.fields["lastSeen"] == later
    assert "resolvedAt" not in entity.fields

    states = world.directory.users[IRVIN]["licenseAssignmentStates"]
    for state in states:
        state.update(state="Active", error=None)
    world.clock.advance(3600)
    third = await recompute_users(world.svc, recompute(IRVIN))
    resolved = table.get(IRVIN, safe_key(IRVIN_COUNT_VIOLATION))

    assert IRVIN_COUNT_VIOLATION in third.resolved
    assert resolved is not None
    assert resolved.fields["resolvedAt"] == world.clock.now()
    assert resolved.fields["firstSeen"] == first_seen
    assert IRVIN_COUNT_VIOLATION not in FindingsLedger(table).open_findings(IRVIN)


async def test_in_observe_mode_nothing_is_queued_and_nothing_is_written_to_graph(
    world: World,
) -> None:
    await learned(world)
    free_ems_seats(world, 2)

    outcome = await recompute_users(world.svc, recompute(IRVIN, JONI, DIEGO, ADELE))

    assert outcome.queued == []
    assert set(outcome.would_reprocess) == {IRVIN, JONI, DIEGO, ADELE}
    assert reprocess_messages(world) == []
    assert world.directory.requests["reprocess_license_assignment"] == 0
    assert world.directory.reprocessed == []


async def test_in_act_mode_a_count_violation_is_queued_once_free_seats_exist(
    act_world: World,
) -> None:
    world = await learned(act_world)

    short = await recompute_users(world.svc, recompute(IRVIN))
    assert short.alerts == [IRVIN]  # no free seat: buy or free seats
    assert reprocess_messages(world) == []

    free_ems_seats(world, 1)
    world.clock.advance(2 * 3600)  # the cached SKUs are refreshed
    freed = await recompute_users(world.svc, recompute(IRVIN))

    assert freed.queued == [IRVIN]
    [msg] = reprocess_messages(world)
    assert msg.user_id == IRVIN
    assert len(msg.causes) == 1
    entity = world.svc.tables.findings.get(IRVIN, safe_key(IRVIN_COUNT_VIOLATION))
    assert entity is not None
    assert entity.fields["reprocessQueuedAt"] == world.clock.now()


async def test_in_act_mode_a_lingering_exchange_plan_1_and_2_conflict_is_queued_at_once(
    act_world: World,
) -> None:
    """Isaiah holds Office 365 E1 directly with SharePoint disabled: only its Exchange Online
    Plan 1 meets E3's Plan 2, a pair Microsoft now allows and says to reprocess."""
    world = await learned(act_world)
    isaiah = world.directory.users[ISAIAH]
    [e1] = [s for s in isaiah["licenseAssignmentStates"] if s["assignedByGroup"] is None]
    e1["disabledPlans"] = [SHAREPOINT_PLAN_1]
    isaiah["assignedLicenses"][0]["disabledPlans"] = [SHAREPOINT_PLAN_1]

    outcome = await recompute_users(world.svc, recompute(ISAIAH))

    assert outcome.queued == [ISAIAH]
    [msg] = reprocess_messages(world)
    assert msg.user_id == ISAIAH
    entity = world.svc.tables.findings.get(ISAIAH, safe_key(ISAIAH_CONFLICT))
    assert entity is not None
    assert str(entity.fields["remedy"]).startswith("Reprocess the user")


async def test_a_conflict_sharepoint_still_explains_is_left_to_the_admin(
    act_world: World,
) -> None:
    world = await learned(act_world)  # the demo: E1 (direct) against E3 from E3 Base

    outcome = await recompute_users(world.svc, recompute(ISAIAH))

    assert outcome.alerts == [ISAIAH]
    assert reprocess_messages(world) == []


async def test_a_duplicate_recompute_message_does_not_queue_the_same_cause_twice(
    act_world: World,
) -> None:
    world = await learned(act_world)
    free_ems_seats(world, 2)
    message = recompute(IRVIN, JONI)

    first = await recompute_users(world.svc, message)
    duplicate = await recompute_users(world.svc, message)

    assert sorted(first.queued) == sorted([IRVIN, JONI])
    assert duplicate.queued == []
    assert sorted(m.user_id for m in reprocess_messages(world)) == sorted([IRVIN, JONI])


async def test_a_duplicate_recompute_message_does_not_give_a_seat_already_given_away(
    act_world: World,
) -> None:
    world = await learned(act_world)
    free_ems_seats(world, 1)  # one seat, two users waiting for it
    message = recompute(IRVIN, JONI)

    first = await recompute_users(world.svc, message)
    duplicate = await recompute_users(world.svc, message)

    assert len(first.queued) == 1
    assert duplicate.queued == []
    assert len(reprocess_messages(world)) == 1


async def test_the_act_allow_list_limits_reprocesses_to_its_groups() -> None:
    world = await learned(build_world(LICENSE_GUARD_MODE="act", ACT_GROUP_ALLOWLIST=E3_BASE))
    free_ems_seats(world, 2)

    outcome = await recompute_users(world.svc, recompute(IRVIN, DIEGO))

    assert outcome.queued == [DIEGO]  # PlanMismatch in E3 Base
    assert outcome.would_reprocess == [IRVIN]  # CountViolation in EMS E3: not on the list
    assert [m.user_id for m in reprocess_messages(world)] == [DIEGO]


async def test_the_kill_switch_blocks_every_reprocess_even_in_act_mode() -> None:
    world = await learned(build_world(LICENSE_GUARD_MODE="act", WRITES_DISABLED="true"))
    free_ems_seats(world, 2)

    outcome = await recompute_users(world.svc, recompute(IRVIN, DIEGO))

    assert outcome.queued == []
    assert reprocess_messages(world) == []


async def test_a_deleted_users_open_findings_are_resolved(world: World) -> None:
    await learned(world)
    await recompute_users(world.svc, recompute(IRVIN))
    del world.directory.users[IRVIN]

    outcome = await recompute_users(world.svc, recompute(IRVIN))

    assert outcome.gone == [IRVIN]
    assert IRVIN_COUNT_VIOLATION in outcome.resolved
    assert FindingsLedger(world.svc.tables.findings).open_findings(IRVIN) == {}


async def test_a_user_waiting_for_group_processing_is_recomputed_again_later() -> None:
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    world = await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))

    outcome = await recompute_users(world.svc, recompute(ADELE))

    assert outcome.retry_later == [ADELE]
    assert reprocess_messages(world) == []
    world.clock.advance(timedelta(minutes=15).total_seconds() - 1)
    assert world.messages(RECOMPUTE_USERS) == []  # not before the group may have finished
    world.clock.advance(61)  # delays round up to the next whole minute
    [retry] = world.messages(RECOMPUTE_USERS)
    assert isinstance(retry, RecomputeUsers)
    assert retry.user_ids == (ADELE,)


async def test_more_triggers_for_a_waiting_user_start_no_second_retry_chain() -> None:
    """A waiting user recomputed again (the errors re-check, a group change) before its retry
    is due sends no second delayed retry; once that retry is handled, it sends the next."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    world = await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))

    assert (await recompute_users(world.svc, recompute(ADELE))).retry_later == [ADELE]
    world.clock.advance(5 * 60)
    assert (await recompute_users(world.svc, recompute(ADELE))).retry_later == [ADELE]
    world.clock.advance(5 * 60)
    assert (await recompute_users(world.svc, recompute(ADELE))).retry_later == [ADELE]

    world.clock.advance(timedelta(hours=1).total_seconds())
    [retry] = world.messages(RECOMPUTE_USERS)
    assert isinstance(retry, RecomputeUsers)
    assert (await recompute_users(world.svc, retry)).retry_later == [ADELE]
    world.clock.advance(timedelta(hours=5).total_seconds())
    assert [m.user_ids for m in world.messages_of(RECOMPUTE_USERS, RecomputeUsers)] == [(ADELE,)]


async def test_a_recompute_before_its_groups_license_change_leaves_that_change_to_the_group_round(
    world: World,
) -> None:
    """Re-reading a group's processing state for one waiting user must not store the group's
    new licenses: the notification still on `groups-changed` would then see no change, and
    the group's other members would never be recomputed."""
    await learned(world)
    world.directory.set_group_licenses(
        E3_BASE,
        [{"skuId": ENTERPRISEPACK, "disabledPlans": ["57ff2da0-773e-42df-b2af-ffb7a2317929"]}],
    )
    await recompute_users(world.svc, recompute(ADELE))  # pending in E3 Base: gated, re-read

    outcome = await handle_group_changes(world.svc, changed(E3_BASE))

    assert outcome.license_changed == [E3_BASE]
    assert set(world.directory.group_member_ids_now(E3_BASE)) <= outcome.users


async def test_skus_are_read_from_the_cache_until_they_are_an_hour_old(world: World) -> None:
    await learned(world)

    await recompute_users(world.svc, recompute(IRVIN))
    await recompute_users(world.svc, recompute(JONI))
    assert world.directory.requests["subscribed_skus"] == 1

    world.clock.advance(3601)
    await recompute_users(world.svc, recompute(IRVIN))
    assert world.directory.requests["subscribed_skus"] == 2


async def test_a_group_sku_gone_from_subscribed_skus_is_looked_up_once_an_hour_not_every_read(
    world: World,
) -> None:
    """Graph keeps a group's license after its subscription left subscribedSkus: each read
    must not refresh the SKUs again for a SKU a fresh read has just not listed."""
    gone = {"skuId": "00000000-0000-0000-0000-000000000001", "disabledPlans": []}
    licenses = world.directory.groups[EMS_E3]["assignedLicenses"]
    world.directory.set_group_licenses(EMS_E3, [*licenses, gone])
    await learned(world)
    before = world.directory.requests["subscribed_skus"]

    await recompute_users(world.svc, recompute(IRVIN))
    await recompute_users(world.svc, recompute(JONI))
    assert world.directory.requests["subscribed_skus"] - before == 1

    world.clock.advance(3601)
    await recompute_users(world.svc, recompute(IRVIN))
    assert world.directory.requests["subscribed_skus"] - before == 2


async def test_a_sku_bought_and_assigned_since_the_cache_was_filled_refreshes_it(
    world: World,
) -> None:
    await learned(world)
    await recompute_users(world.svc, recompute(IRVIN))
    bought = copy.deepcopy(next(s for s in world.directory.skus if s["skuId"] == EMS))
    bought["skuId"] = "00000000-0000-0000-0000-000000000002"
    world.directory.skus.append(bought)
    licenses = world.directory.groups[EMS_E3]["assignedLicenses"]
    world.directory.set_group_licenses(EMS_E3, [*licenses, {"skuId": bought["skuId"]}])
    await handle_group_changes(world.svc, changed(EMS_E3))

    await recompute_users(world.svc, recompute(IRVIN))

    assert world.directory.requests["subscribed_skus"] == 2


async def test_a_sku_gone_from_subscribed_skus_leaves_the_cache_so_findings_do_not_flap(
    world: World,
) -> None:
    """After the refresh that no longer lists a SKU, the cache must not bring it back: the
    findings read from the cache would flip back to those of the SKU being there."""
    await learned(world)
    await recompute_users(world.svc, recompute(ADELE))  # pending in E3 Base (ENTERPRISEPACK)
    world.directory.skus[:] = [s for s in world.directory.skus if s["skuId"] != ENTERPRISEPACK]
    world.clock.advance(3601)  # the cached SKUs are refreshed
    fresh = await recompute_users(world.svc, recompute(ADELE))
    assert any("PendingGroupAssignment" in key for key in fresh.resolved)

    world.clock.advance(60)  # from the cache
    cached = await recompute_users(world.svc, recompute(ADELE))

    assert cached.new_findings == []
    assert cached.resolved == []


async def test_a_user_pending_in_many_groups_is_queued_though_the_reasons_run_long() -> None:
    """A joiner still pending in nine licensed groups that finished processing: one reason per
    group, over 1,000 characters together. The reprocess was recorded as queued, then the
    message refused the long reason (MessageError), failing the recompute once per such user:
    five joiners in one batch poisoned it."""
    snapshot, extra = many_licensed_groups(8)
    for group in snapshot["groups"]:
        if group["id"] in extra:
            group["members"] = [{"@odata.type": "#microsoft.graph.user", "id": ADELE}]
    world = await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))

    outcome = await recompute_users(world.svc, recompute(ADELE))

    assert outcome.queued == [ADELE]
    [msg] = reprocess_messages(world)
    assert len(msg.causes) == len(extra) + 1


@pytest.mark.parametrize(("days", "joni_queued"), [(1, False), (3, True)])
async def test_a_reprocess_whose_message_was_poisoned_days_ago_holds_no_seat(
    act_world: World, days: int, joni_queued: bool
) -> None:
    """Irvin's reprocess failed every attempt (a 403, an outage) and its message was poisoned,
    then deleted from -poison. Days later its ledger row still said "queued": the seat it
    promised was held from everyone recomputed with Irvin, so Joni was told there was no free
    seat while one was, and Irvin's own CountViolation was skipped as being handled. (A day
    later the message may still wait for the brake's next day: the seat stays promised.)"""
    await learned(act_world)
    free_ems_seats(act_world, 1)
    await recompute_users(act_world.svc, recompute(IRVIN))
    assert [m.user_id for m in reprocess_messages(act_world)] == [IRVIN]  # then poisoned
    act_world.clock.advance(timedelta(days=days).total_seconds())

    outcome = await recompute_users(act_world.svc, recompute(IRVIN, JONI))

    assert outcome.queued == ([JONI] if joni_queued else [])
    # already reprocessed for this cause: reported, not retried
    assert (IRVIN in outcome.alerts) is joni_queued


async def test_a_user_reprocessed_now_with_another_cause_waiting_is_recomputed_later() -> None:
    """Adele waits for E3 Base to finish processing and for an EMS seat, which is free: she is
    reprocessed now for the seat. The decision covered only the seat, and nothing brought her
    back for the group's processing (the nightly did, up to a day later)."""
    snapshot = demo_snapshot()
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    base["licenseProcessingState"] = {"state": "QueuedForProcessing"}
    [ems_group] = [g for g in snapshot["groups"] if g["id"] == EMS_E3]
    ems_group["members"].append({"@odata.type": "#microsoft.graph.user", "id": ADELE})
    [adele] = [u for u in snapshot["users"] if u["id"] == ADELE]
    adele["licenseAssignmentStates"].append(
        {
            "skuId": EMS,
            "assignedByGroup": EMS_E3,
            "disabledPlans": [],
            "state": "Error",
            "error": "CountViolation",
            "lastUpdatedDateTime": "2026-11-21T08:00:00Z",
        }
    )
    world = await learned(build_world(snapshot, LICENSE_GUARD_MODE="act"))
    free_ems_seats(world, 1)

    outcome = await recompute_users(world.svc, recompute(ADELE))

    assert outcome.queued == [ADELE]
    world.clock.advance(timedelta(minutes=15).total_seconds() - 1)
    assert world.messages(RECOMPUTE_USERS) == []
    world.clock.advance(61)
    [retry] = world.messages(RECOMPUTE_USERS)
    assert isinstance(retry, RecomputeUsers)
    assert retry.user_ids == (ADELE,)
