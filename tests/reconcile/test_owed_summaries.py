"""A nightly summary Graph refuses stays owed and is sent later, once (`owed_summaries`): by
the tenant alerts timer, or by the next night's finish before its own summary."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pytest

from shared.core.nightly_summary import DriftItem, NightlySummary
from shared.fakes.directory import FakeDirectory
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import Entity
from shared.service.alerts.summaries import BASELINE_STATE, baseline_pending
from shared.service.reconcile.owed_summaries import owe_summary, send_owed_summaries
from shared.service.reconcile.run_state import SUMMARY_SENT, ReconcileResult
from shared.service.stores import ServiceState
from shared.service.tenant_alerts import send_tenant_alerts
from tests.alerts.test_delivery import OverHttp
from tests.reconcile.conftest import PAGE, Nightly, SmallPages
from tests.service.world import build_world

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


def sent_row(nightly: Nightly) -> dict[str, Any]:
    entity = ServiceState(nightly.world.svc.tables.servicestate).get(SUMMARY_SENT)
    return dict(entity.fields) if entity else {}


def subjects_since(nightly: Nightly, sent_before: int) -> list[str]:
    return [str(m["message"]["subject"]) for m in nightly.directory.sent_mail[sent_before:]]


def refuse_the_next_sends(nightly: Nightly) -> None:
    """Graph answers 503 to each of the delivery's three attempts."""
    for _ in range(3):
        nightly.directory.fail_next_send_mail(503, retry_after=0)


async def a_night_graph_refuses(nightly: Nightly) -> ReconcileResult:
    refuse_the_next_sends(nightly)
    return await nightly.run()


def mailing_nightly(fake: type[FakeDirectory] = SmallPages) -> Nightly:
    """A nightly with alert mail; its blobs are the services' own, as deployed (the tenant
    alerts timer reads the owed summary.json from them)."""
    nightly = Nightly(
        build_world(
            fake=fake,
            ALERT_SENDER="megan.bowen@contoso.com",
            ALERT_RECIPIENTS="it-licensing@contoso.com",
        )
    )
    nightly.blobs = nightly.world.svc.blobs  # type: ignore[assignment]
    return nightly


@pytest.fixture
def mailing() -> Nightly:
    return mailing_nightly()


async def after_a_baseline(nightly: Nightly) -> int:
    """The baseline run, a day on: how many mails went so far."""
    await nightly.run()
    nightly.world.clock.advance(DAY)
    return len(nightly.directory.sent_mail)


async def test_a_summary_graph_refuses_is_sent_by_the_tenant_alerts_timer(
    mailing: Nightly,
) -> None:
    sent_before = await after_a_baseline(mailing)

    result = await a_night_graph_refuses(mailing)

    assert result.status == "done"
    assert len(mailing.directory.sent_mail) == sent_before
    row = sent_row(mailing)
    assert row.get("date") != result.date
    assert row["owed"] == f"nightly/{result.date}/{result.run_id}/summary.json"

    mailing.world.clock.advance(1800)
    await send_tenant_alerts(mailing.world.svc)
    await send_tenant_alerts(mailing.world.svc)

    [mail] = mailing.directory.sent_mail[sent_before:]
    assert result.date in str(mail["message"]["subject"])
    assert mailing.directory.drafts == {}
    row = sent_row(mailing)
    assert (row["date"], row["runId"], row["owed"]) == (result.date, result.run_id, "")


async def test_a_summary_still_owed_goes_out_before_the_next_nights_own(
    mailing: Nightly,
) -> None:
    sent_before = await after_a_baseline(mailing)
    first = await a_night_graph_refuses(mailing)
    mailing.world.clock.advance(DAY)

    second = await mailing.run()
    again = await mailing.run(force=True)  # a rerun never mails a second summary

    subjects = subjects_since(mailing, sent_before)
    assert len(subjects) == 2
    assert first.date in subjects[0]
    assert second.date in subjects[1]
    assert again.status == "done"
    row = sent_row(mailing)
    assert (row["date"], row["runId"], row["owed"]) == (second.date, second.run_id, "")


async def test_summaries_wait_in_order_while_graph_refuses_them(mailing: Nightly) -> None:
    """Nothing is claimed past an owed summary: the night after sends nothing of its own while
    the older one still fails, then both go out, oldest first, once each."""
    sent_before = await after_a_baseline(mailing)
    first = await a_night_graph_refuses(mailing)
    mailing.world.clock.advance(DAY)
    second = await a_night_graph_refuses(mailing)

    assert len(mailing.directory.sent_mail) == sent_before
    assert sent_row(mailing)["owed"].split() == [
        f"nightly/{first.date}/{first.run_id}/summary.json",
        f"nightly/{second.date}/{second.run_id}/summary.json",
    ]

    await send_tenant_alerts(mailing.world.svc)

    subjects = subjects_since(mailing, sent_before)
    assert [first.date in subjects[0], second.date in subjects[1]] == [True, True]
    assert len(subjects) == 2
    assert sent_row(mailing)["owed"] == ""


async def test_a_baseline_whose_mail_graph_refuses_is_recorded_and_its_mail_owed(
    mailing: Nightly,
) -> None:
    """The baseline itself is recorded (the next night acts), its mail is sent later."""
    result = await a_night_graph_refuses(mailing)

    assert result.baseline
    assert mailing.directory.sent_mail == []
    assert not baseline_pending(mailing.world.svc)
    recorded = ServiceState(mailing.world.svc.tables.servicestate).get(BASELINE_STATE)
    assert recorded is not None
    assert sent_row(mailing)["owed"] == f"nightly/{result.date}/{result.run_id}/summary.json"

    await send_tenant_alerts(mailing.world.svc)

    [mail] = mailing.directory.sent_mail
    subject = str(mail["message"]["subject"])
    assert "baseline" in subject
    assert f"{recorded.fields['issues']} existing issue" in subject
    assert sent_row(mailing)["owed"] == ""


async def test_a_summary_whose_stored_json_is_gone_is_given_up_not_retried_forever(
    mailing: Nightly,
) -> None:
    await after_a_baseline(mailing)
    result = await a_night_graph_refuses(mailing)
    mailing.blobs.delete(f"nightly/{result.date}/{result.run_id}/summary.json")

    await send_tenant_alerts(mailing.world.svc)

    assert sent_row(mailing)["owed"] == ""


async def test_the_stored_summary_reads_back_as_the_run_made_it(mailing: Nightly) -> None:
    result = await mailing.run()
    assert result.summary is not None
    assert result.summary.seat_forecast
    assert result.summary.top_groups_by_errors
    summary = replace(result.summary, drift=[DriftItem("group-gained-sku", "Sales", "E3.", "a")])
    blob = f"nightly/{result.date}/{result.run_id}/summary.json"
    stored = orjson.loads(mailing.blobs.get(blob) or b"{}")

    # (the result's report_blobs list grew after summary.json was written: compare the rest)
    assert NightlySummary.from_json(stored) == replace(
        result.summary, report_blobs=stored["report_blobs"]
    )
    assert NightlySummary.from_json(stored).to_json() == stored
    assert NightlySummary.from_json(orjson.loads(orjson.dumps(summary.to_json()))) == summary
    assert NightlySummary.from_json({**stored, "addedLater": 1}).to_json() == stored


class SmallPagesOverHttp(OverHttp):
    """Small pages, and each mail call waits for its answer, as over HTTP."""

    def __init__(self, snapshot: Mapping[str, Any], *, now: Callable[[], datetime] | None = None):
        super().__init__(snapshot, now=now, page_size=PAGE)


async def test_the_timer_and_a_finish_sending_owed_summaries_at_once_send_each_once() -> None:
    """The tenant alerts timer and a night's finish may both send what is owed at once: each
    writes `owed` only over the row it read, and the mail protocol sends each draft once."""
    nightly = mailing_nightly(SmallPagesOverHttp)
    sent_before = await after_a_baseline(nightly)
    first = await a_night_graph_refuses(nightly)
    nightly.world.clock.advance(DAY)
    second = await a_night_graph_refuses(nightly)

    await asyncio.gather(
        send_owed_summaries(nightly.world.svc), send_owed_summaries(nightly.world.svc)
    )

    subjects = subjects_since(nightly, sent_before)
    assert len(subjects) == 2
    assert [first.date in subjects[0], second.date in subjects[1]] == [True, True]
    assert nightly.directory.drafts == {}
    row = sent_row(nightly)
    assert (row["date"], row["owed"]) == (second.date, "")


class AnotherWorkerWritesAfterTheRead(InMemoryTable):
    """`servicestate` where another worker writes the summary row right after ours is read."""

    def __init__(self, other_write: Callable[[InMemoryTable], object]) -> None:
        super().__init__("servicestate")
        self.other_write: Callable[[InMemoryTable], object] | None = other_write

    def get(self, pk: str, rk: str) -> Entity | None:
        entity = super().get(pk, rk)
        if rk == SUMMARY_SENT and self.other_write is not None:
            write, self.other_write = self.other_write, None
            write(self)
        return entity


def test_owing_a_summary_never_writes_back_one_another_worker_just_sent() -> None:
    """Another worker (the timer) records `a` sent between our read of the row and our write:
    written back as read, `a` would be owed again and mailed a second time."""
    a, b = "nightly/2026-01-01/r1/summary.json", "nightly/2026-01-02/r2/summary.json"

    def sent_a(table: InMemoryTable) -> None:
        ServiceState(table).put(SUMMARY_SENT, {"date": "2026-01-01", "runId": "r1", "owed": ""})

    table = AnotherWorkerWritesAfterTheRead(sent_a)
    state = ServiceState(table)
    state.put(SUMMARY_SENT, {"owed": a})

    owe_summary(state, b)

    row = state.get(SUMMARY_SENT)
    assert row is not None
    assert (row.fields["date"], row.fields["owed"]) == ("2026-01-01", b)
