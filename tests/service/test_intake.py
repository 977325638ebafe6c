"""Notification intake: what reaches `groups-changed`, and what is dropped at the door."""

from __future__ import annotations

import pytest

from shared.ports.messages import GroupsChanged
from shared.ports.queues import GROUPS_CHANGED
from shared.service.intake.notifications import accept_change_notifications
from tests.demo_tenant import E3_BASE, E3_TEAMS
from tests.service.world import PREVIOUS_CLIENT_STATE, SUBSCRIPTION_ID, World, body, notification

OTHER_SUBSCRIPTION = "11111111-2222-4333-8444-555555555555"
OTHER_TENANT = "99999999-8888-4777-8666-555555555555"


def test_a_genuine_notification_enqueues_one_groups_changed_with_deduplicated_ids(
    world: World,
) -> None:
    world.subscribe()

    intake = accept_change_notifications(
        world.svc,
        body(notification(E3_BASE), notification(E3_TEAMS), notification(E3_BASE.upper())),
    )

    [msg] = world.messages(GROUPS_CHANGED)
    assert isinstance(msg, GroupsChanged)
    assert msg.group_ids == (E3_BASE, E3_TEAMS)
    assert msg.correlation_id == intake.correlation_id
    assert world.directory.request_count == 0  # the webhook never calls Graph


@pytest.mark.parametrize(
    "forgery",
    [
        {"clientState": "forged-client-state-0000"},
        {"clientState": None},
        {"subscriptionId": OTHER_SUBSCRIPTION},
        {"tenantId": OTHER_TENANT},
    ],
    ids=["forged-client-state", "no-client-state", "foreign-subscription", "foreign-tenant"],
)
def test_forged_or_foreign_notifications_enqueue_nothing(
    world: World, forgery: dict[str, object]
) -> None:
    world.subscribe()

    intake = accept_change_notifications(world.svc, body(notification(E3_BASE, **forgery)))

    assert world.messages(GROUPS_CHANGED) == []
    assert intake.correlation_id is None
    assert len(intake.vetted.rejected) == 1


def test_only_the_genuine_items_of_a_mixed_batch_are_enqueued(world: World) -> None:
    world.subscribe()

    accept_change_notifications(
        world.svc,
        body(notification(E3_BASE, clientState="forged-client-state-0000"), notification(E3_TEAMS)),
    )

    [msg] = world.messages(GROUPS_CHANGED)
    assert isinstance(msg, GroupsChanged)
    assert msg.group_ids == (E3_TEAMS,)


def test_the_previous_client_state_is_accepted_during_a_rotation(world: World) -> None:
    world.subscribe()

    accept_change_notifications(
        world.svc, body(notification(E3_BASE, clientState=PREVIOUS_CLIENT_STATE))
    )

    assert len(world.messages(GROUPS_CHANGED)) == 1


def test_without_a_recorded_subscription_nothing_is_ours(world: World) -> None:
    accept_change_notifications(world.svc, body(notification(E3_BASE)))

    assert world.messages(GROUPS_CHANGED) == []


def test_subscription_ids_are_read_from_the_subscriptions_table_even_when_just_created(
    world: World,
) -> None:
    world.subscribe()
    accept_change_notifications(world.svc, body(notification(E3_BASE)))  # caches the ids
    world.messages(GROUPS_CHANGED)

    world.subscribe(OTHER_SUBSCRIPTION)  # the keeper just created another one
    accept_change_notifications(
        world.svc, body(notification(E3_TEAMS, subscriptionId=OTHER_SUBSCRIPTION))
    )

    [msg] = world.messages(GROUPS_CHANGED)
    assert isinstance(msg, GroupsChanged)
    assert msg.group_ids == (E3_TEAMS,)


def test_subscription_ids_compare_case_insensitively(world: World) -> None:
    world.subscribe(SUBSCRIPTION_ID.upper())

    accept_change_notifications(world.svc, body(notification(E3_BASE)))

    assert len(world.messages(GROUPS_CHANGED)) == 1
