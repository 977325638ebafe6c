"""Delivery: retried on 429/5xx, at least once, at most one duplicate after a crash."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.fake_directory import FakeDirectory
from shared.directory import JSON
from shared.service.alerts import run_digest
from shared.service.stores import FindingsLedger
from tests.alerts.world import (
    GRACE_SECONDS,
    Sleeps,
    alert_world,
    baseline,
    error,
    header,
    mails,
    prime,
    record,
)
from tests.service.world import IRVIN, JONI, build_world

pytestmark = pytest.mark.anyio


class Crash(Exception):
    """The worker dies (host recycled) right after Graph accepted the mail."""


class CrashAfterAcceptance(FakeDirectory):
    crashes = 0

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        await super().send_mail(sender, message, save_to_sent_items=save_to_sent_items)
        if self.crashes:
            self.crashes -= 1
            raise Crash


async def test_a_503_is_retried_after_retry_after_and_the_digest_arrives_once() -> None:
    world = alert_world()
    await baseline(world)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)
    world.directory.fail_next_send_mail(503, retry_after=7)
    sleeps = Sleeps()

    outcome = await run_digest(world.svc, sleep=sleeps)
    again = await run_digest(world.svc, sleep=sleeps)

    assert outcome.status == "sent"
    assert sleeps.waits == [7]
    assert len(mails(world)) == 1
    assert again.status == "nothing-new"


async def test_a_digest_that_fails_every_attempt_arrives_at_the_next_run_with_the_same_id() -> None:
    world = alert_world()
    await baseline(world)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)
    for _ in range(3):
        world.directory.fail_next_send_mail(429, retry_after=2)

    failed = await run_digest(world.svc, sleep=Sleeps())
    world.clock.advance(3600)
    later = await run_digest(world.svc, sleep=Sleeps())
    [mail] = mails(world)

    assert failed.status == "failed"
    assert mails(world) == [mail]
    assert later.status == "sent"
    assert later.mail_id == failed.mail_id
    assert header(mail) == failed.mail_id
    assert (await run_digest(world.svc, sleep=Sleeps())).status == "nothing-new"


async def test_a_forbidden_send_is_not_retried() -> None:
    world = alert_world()
    await baseline(world)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)
    world.directory.fail_next_send_mail(403)
    sleeps = Sleeps()

    outcome = await run_digest(world.svc, sleep=sleeps)

    assert outcome.status == "failed"
    assert sleeps.waits == []
    entity = next(iter(world.svc.tables.findings.query_all()))
    assert "alertedIn" not in entity.fields or entity.fields["alertedIn"].startswith("baseline")


async def test_a_crash_between_acceptance_and_the_state_write_repeats_the_digest_at_most_once() -> (
    None
):
    world = build_world(
        fake=CrashAfterAcceptance,
        ALERT_SENDER="megan.bowen@contoso.com",
        ALERT_RECIPIENTS="it-licensing@contoso.com",
    )
    prime(world)
    await baseline(world)
    assert isinstance(world.directory, CrashAfterAcceptance)
    world.directory.crashes = 1
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    with pytest.raises(Crash):
        await run_digest(world.svc)
    resent = await run_digest(world.svc)
    third = await run_digest(world.svc)
    ids = [header(m) for m in mails(world)]

    assert len(ids) == 2
    assert ids[0] == ids[1] == resent.mail_id
    assert third.status == "nothing-new"
    alerted: dict[str, Any] = {
        str(e.fields["key"]): e.fields.get("alertedIn")
        for e in world.svc.tables.findings.query_all()
    }
    assert set(alerted.values()) == {resent.mail_id}
    assert FindingsLedger(world.svc.tables.findings).open_by_code(["CountViolation"])
