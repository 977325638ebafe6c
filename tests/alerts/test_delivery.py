"""Delivery: retried on 429/5xx, exactly one mail after a crash or a lost answer (a draft,
recorded, then sent: shared/service/alerts/mail_delivery.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from shared.fakes.directory import FakeDirectory
from shared.ports.directory import JSON
from shared.service.alerts.digest import DigestOutcome, run_digest
from shared.service.alerts.immediate import open_unalerted, send_immediate
from shared.service.alerts.sending import SENDING, SENT
from shared.service.stores import FindingsLedger
from tests.alerts.mail import header, html, mails
from tests.alerts.world import (
    GRACE_SECONDS,
    RECIPIENT,
    SENDER,
    baseline,
    clear,
    error,
    prime,
    record,
    world_with_findings,
)
from tests.demo_tenant import IRVIN, JONI
from tests.service.world import World, build_world
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio


class Crash(Exception):
    """The worker dies (host recycled) right after Graph accepted the mail."""


class CrashAfterAcceptance(FakeDirectory):
    crashes = 0

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        went = await super().send_draft(sender, draft_id)
        if self.crashes:
            self.crashes -= 1
            raise Crash
        return went


class OverHttp(FakeDirectory):
    """Each mail call waits for its answer, as over HTTP: another run goes on meanwhile."""

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        await asyncio.sleep(0)
        return await super().find_draft(sender, internet_message_id)

    async def create_draft(self, sender: str, mime: bytes) -> str:
        await asyncio.sleep(0)
        return await super().create_draft(sender, mime)

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        await asyncio.sleep(0)
        return await super().send_draft(sender, draft_id)

    async def delete_draft(self, sender: str, draft_id: str) -> bool:
        await asyncio.sleep(0)
        return await super().delete_draft(sender, draft_id)


class SlowFirstCreateAnswer(OverHttp):
    """The first draft is created at once (`created` is set), its answer comes only once
    `answer` is set; later creates answer as usual."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.created, self.answer = asyncio.Event(), asyncio.Event()

    async def create_draft(self, sender: str, mime: bytes) -> str:
        draft_id = await super().create_draft(sender, mime)
        if not self.created.is_set():
            self.created.set()
            await self.answer.wait()
        return draft_id


async def two_digests_at_once(
    fake: type[FakeDirectory],
) -> tuple[World, DigestOutcome, DigestOutcome]:
    """Two digest runs at once, over `fake`, with two new errors to report."""
    world = build_world(fake=fake, ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    await baseline(world)
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)
    first, second = await asyncio.gather(run_digest(world.svc), run_digest(world.svc))
    return world, first, second


async def test_a_digest_timer_that_fires_twice_at_once_sends_one_mail() -> None:
    """The host can overlap a timer's runs (scale-out, a restart). Both runs took the same
    pending id, neither found a draft for it, and each created, recorded and sent its own:
    two identical digests. The draft id is now recorded only over the state it was read
    with; the later run sends the recorded draft (Graph answers 404: sent) and deletes its own."""
    world, first, second = await two_digests_at_once(OverHttp)

    assert (first.status, second.status) == ("sent", "sent")
    assert first.mail_id == second.mail_id
    assert len(mails(world)) == 1
    assert world.directory.drafts == {}
    assert (await run_digest(world.svc)).status == "nothing-new"


class ReadsOverHttp(OverHttp):
    """Reading the users a mail names waits for Graph too, as over HTTP: a run started at the
    same moment reads the channel's pending id before this one claims its own."""

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        await asyncio.sleep(0)
        return await super().users_by_id(user_ids)


async def test_two_digest_runs_that_read_before_either_claimed_send_one_mail() -> None:
    """Both runs read no pending id, composed the same digest under ids of their own while
    Graph answered the names, and each claimed (replacing the other's) and sent its mail: two
    identical digests. A claim now writes only over the state it read, and leaves a pending
    mail of the same findings another run claimed within `DRAFT_LEASE` to that run."""
    world, first, second = await two_digests_at_once(ReadsOverHttp)

    assert sorted((first.status, second.status)) == [SENDING, SENT]
    assert len(mails(world)) == 1
    assert world.directory.drafts == {}
    assert (await run_digest(world.svc)).status == "nothing-new"


async def test_a_503_is_retried_after_retry_after_and_the_digest_arrives_once() -> None:
    world = await world_with_findings(error(IRVIN))
    world.directory.fail_next_send_mail(503, retry_after=7)
    sleeps = Sleeps()

    outcome = await run_digest(world.svc, sleep=sleeps)
    again = await run_digest(world.svc, sleep=sleeps)

    assert outcome.status == "sent"
    assert sleeps.waits == [7]
    assert len(mails(world)) == 1
    assert again.status == "nothing-new"


async def test_a_digest_that_fails_every_attempt_arrives_at_the_next_run_with_the_same_id() -> None:
    world = await world_with_findings(error(IRVIN))
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
    world = await world_with_findings(error(IRVIN))
    world.directory.fail_next_send_mail(403)
    sleeps = Sleeps()

    outcome = await run_digest(world.svc, sleep=sleeps)

    assert outcome.status == "failed"
    assert sleeps.waits == []
    entity = next(iter(world.svc.tables.findings.query_all()))
    assert "alertedIn" not in entity.fields or entity.fields["alertedIn"].startswith("baseline")


async def test_a_crash_between_acceptance_and_the_state_write_sends_the_digest_once() -> None:
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

    assert ids == [resent.mail_id]  # the redelivery found its draft sent (404): no resend
    assert resent.status == "sent"
    assert third.status == "nothing-new"
    alerted: dict[str, Any] = {
        str(e.fields["key"]): e.fields.get("alertedIn")
        for e in world.svc.tables.findings.query_all()
    }
    assert set(alerted.values()) == {resent.mail_id}
    assert FindingsLedger(world.svc.tables.findings).open_by_code(["CountViolation"])


@pytest.mark.parametrize("step", ["create_draft", "send_draft"])
async def test_a_lost_answer_on_create_or_send_still_sends_exactly_one_mail(step: str) -> None:
    """Graph carried out the call and the answer was lost (a reset, a 503 after the write):
    the retry finds the draft by its Message-ID, or meets 404 for a sent draft."""
    world = await world_with_findings(error(IRVIN))
    world.directory.lose_next_answer(step)
    created = world.directory.requests["create_draft"]

    outcome = await run_digest(world.svc, sleep=Sleeps())

    assert outcome.status == "sent"
    assert [header(m) for m in mails(world)] == [outcome.mail_id]
    assert world.directory.drafts == {}  # no stray second draft either
    assert world.directory.requests["create_draft"] == created + 1
    assert (await run_digest(world.svc, sleep=Sleeps())).status == "nothing-new"
    assert len(mails(world)) == 1


async def test_the_mail_is_multipart_alternative_with_text_and_html() -> None:
    world = await world_with_findings(error(IRVIN))

    outcome = await run_digest(world.svc, sleep=Sleeps())

    [sent] = world.directory.sent_mail
    parsed = message_from_bytes(sent["mime"], policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in parsed.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "<" not in text.get_content().split("\n")[0]  # the text part is not HTML
    assert "<html" in html.get_content().lower() or "<table" in html.get_content().lower()
    assert parsed["x-license-guard-digest"] == outcome.mail_id
    assert parsed["Message-ID"].startswith("<license-guard.")


async def test_a_retried_digest_with_new_findings_mails_them_instead_of_the_stale_draft() -> None:
    """The pending digest's draft holds what was new then; a finding that became alertable
    before the retry must reach a mail before it is marked as mailed."""
    world = await world_with_findings(error(IRVIN))
    for _ in range(3):
        world.directory.fail_next_send_mail(429, retry_after=2)
    failed = await run_digest(world.svc, sleep=Sleeps())
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    later = await run_digest(world.svc, sleep=Sleeps())
    [joni] = world.svc.tables.findings.query(JONI)
    [mail] = [m for m in mails(world) if header(m) == joni.fields["alertedIn"]]

    assert failed.status == "failed"
    assert later.status == "sent"
    assert "Joni" in html(mail)


async def test_the_draft_of_a_replaced_digest_is_deleted_not_left_in_drafts() -> None:
    """A failed digest's draft is never sent once a newer digest (other rows) replaces it: it
    must not stay in the sender's Drafts forever."""
    world = await world_with_findings(error(IRVIN))
    world.directory.fail_next_send_mail(403)
    failed = await run_digest(world.svc, sleep=Sleeps())
    assert len(world.directory.drafts) == 1  # the failed mail's draft
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    later = await run_digest(world.svc, sleep=Sleeps())

    assert failed.status == "failed"
    assert later.status == "sent"
    assert later.mail_id != failed.mail_id
    assert world.directory.drafts == {}
    assert [header(m) for m in mails(world)] == [later.mail_id]


async def test_the_draft_of_a_digest_no_longer_news_is_deleted_by_the_next_send() -> None:
    """A failed digest whose findings resolved before any retry is closed as 'nothing new'
    and never sent: its draft goes with the channel's next mail."""
    world = await world_with_findings(error(IRVIN))
    world.directory.fail_next_send_mail(403)
    failed = await run_digest(world.svc, sleep=Sleeps())
    clear(world, IRVIN)
    quiet = await run_digest(world.svc, sleep=Sleeps())
    record(world, error(JONI))
    world.clock.advance(GRACE_SECONDS)

    later = await run_digest(world.svc, sleep=Sleeps())

    assert (failed.status, quiet.status, later.status) == ("failed", "nothing-new", "sent")
    assert world.directory.drafts == {}
    assert [header(m) for m in mails(world)] == [later.mail_id]


async def test_an_immediate_alert_sent_while_another_is_in_flight_leaves_its_draft_alone() -> None:
    """Two workers alert at once with different findings (so different mail ids): the later
    one replaces the pending id, and its send deleted the earlier one's draft as abandoned
    before that was sent; Graph's 404 read as 'sent', and Irvin's alert was lost."""
    world = build_world(fake=SlowFirstCreateAnswer, ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    record(world, error(IRVIN), error(JONI))
    pairs = open_unalerted(world.svc, {"CountViolation"})
    joni_only = [(e, r) for e, r in pairs if r.subject == JONI]
    directory = world.directory
    assert isinstance(directory, SlowFirstCreateAnswer)

    def alert(chosen: list[Any]) -> Any:
        return send_immediate(world.svc, channel="immediate", kind="data-loss", title="lost",
                              lead=("lost",), pairs=chosen, sleep=Sleeps())  # fmt: skip

    first = asyncio.create_task(alert(pairs))
    await directory.created.wait()  # the first worker's draft exists, its answer is on the way
    second = await alert(joni_only)
    directory.answer.set()
    both = await first

    assert both is not None
    assert second is not None
    sent = {header(m) for m in mails(world)}
    assert sent == {both.mail_id, second.mail_id}
    for row in world.svc.tables.findings.query_all():
        assert row.fields["alertedIn"] in sent


async def test_two_workers_alerting_the_same_findings_at_once_send_one_mail() -> None:
    """Two recompute messages for one user at once (a group change and a user change) both
    record its data-loss finding as new and alert it: each composed the mail under its own id
    while Graph answered the names, and two identical immediate mails went out. The later
    claim leaves the mail to the run already sending it; that run marks the findings."""
    world = build_world(fake=ReadsOverHttp, ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    record(world, error(IRVIN), error(JONI))
    pairs = open_unalerted(world.svc, {"CountViolation"})

    def alert() -> Any:
        return send_immediate(world.svc, channel="immediate", kind="data-loss", title="lost",
                              lead=("lost",), pairs=pairs, sleep=Sleeps())  # fmt: skip

    first, second = await asyncio.gather(alert(), alert())

    assert sorted((first.status, second.status)) == [SENDING, SENT]
    sent = [header(m) for m in mails(world)]
    assert len(sent) == 1
    assert world.directory.drafts == {}
    assert {row.fields["alertedIn"] for row in world.svc.tables.findings.query_all()} == set(sent)
