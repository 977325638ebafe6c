"""The poison watch and the tenant alerts fire on one schedule (`POISON_WATCH_SCHEDULE`): a
message poisoned before a firing is mailed in that firing, whichever of the two runs first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from shared.bootstrap import use
from shared.ports.queues import RECOMPUTE_USERS, poison_name
from tests.alerts.mail import html, mails
from tests.alerts.world import alert_world, baseline
from tests.functions.test_handlers import call, timer
from tests.service.world import World


@pytest.fixture
def alerting() -> Iterator[World]:
    world = alert_world()
    asyncio.run(baseline(world))
    use(world.svc)
    call("subscription_keeper", timer())  # a live subscription: no SubscriptionMissing
    call("poison_watch", timer())
    call("tenant_alerts", timer())
    world.directory.sent_mail.clear()
    yield world
    use(None)


@pytest.mark.parametrize("first", ["tenant_alerts", "poison_watch"])
def test_a_poisoned_message_is_mailed_in_the_firing_after_it(alerting: World, first: str) -> None:
    alerting.queue(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")  # type: ignore[attr-defined]

    second = "poison_watch" if first == "tenant_alerts" else "tenant_alerts"
    call(first, timer())  # the two timers of one firing, in either order
    call(second, timer())

    [mail] = mails(alerting)
    assert "PoisonedMessage" in html(mail)


@pytest.mark.parametrize("first", ["tenant_alerts", "poison_watch"])
def test_a_poisoned_message_is_mailed_once(alerting: World, first: str) -> None:
    alerting.queue(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")  # type: ignore[attr-defined]

    for _ in range(2):  # two firings
        call("tenant_alerts" if first == "tenant_alerts" else "poison_watch", timer())
        call("poison_watch" if first == "tenant_alerts" else "tenant_alerts", timer())

    assert len(mails(alerting)) == 1
