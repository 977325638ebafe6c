"""A nightly run that fails at every firing (Graph refusing a read, a bug on one page) leaves
no summary and no report: the admin must still learn that the safety net has stopped, from
the tenant-level alerts, and learn when it runs again."""

from __future__ import annotations

import pytest

from shared.ports.directory import DirectoryError
from shared.service.tenant_alerts import send_tenant_alerts
from tests.alerts.mail import html, mails
from tests.reconcile.conftest import Nightly, alerting_nightly

pytestmark = pytest.mark.anyio

HOUR = 3600
OVERDUE = "ReconcileOverdue"


def overdue_open(nightly: Nightly) -> bool:
    return any(
        e.fields.get("code") == OVERDUE and not e.fields.get("resolvedAt")
        for e in nightly.world.svc.tables.findings.query_all()
    )


async def test_nights_that_never_finish_are_alerted_and_a_finished_one_clears_it() -> None:
    nightly = alerting_nightly()
    await nightly.run()  # the baseline
    nightly.directory.users_page_fault = lambda _link: DirectoryError(
        500, "UnknownError", "the users page fails every time"
    )
    for night in (1, 2, 3):
        nightly.world.clock.advance(24 * HOUR)
        for _firing in range(3):  # 02:00, 03:00, 04:00
            with pytest.raises(DirectoryError):
                await nightly.run()
            nightly.world.clock.advance(HOUR)
        nightly.world.clock.advance(-3 * HOUR)
        await send_tenant_alerts(nightly.world.svc)
        # Its own night's firings and the next night's may finish a run: then it is overdue.
        assert overdue_open(nightly) == (night == 3)

    overdue = [m for m in mails(nightly.world) if OVERDUE in html(m)]
    assert len(overdue) == 1
    assert "has not finished" in html(overdue[0])

    nightly.directory.users_page_fault = None
    nightly.world.clock.advance(24 * HOUR)
    assert (await nightly.run()).status == "done"
    await send_tenant_alerts(nightly.world.svc)
    assert not overdue_open(nightly)


async def test_a_run_that_finishes_the_next_night_is_not_overdue(nightly: Nightly) -> None:
    await nightly.run()
    nightly.world.clock.advance(24 * HOUR)
    statuses = []
    for _firing in range(5):  # three firings tonight, two the next night: a page each
        now = nightly.world.clock.now()
        statuses.append((await nightly.run(deadline=now)).status)
        await send_tenant_alerts(nightly.world.svc)
        nightly.world.clock.advance(HOUR if len(statuses) != 3 else 22 * HOUR)
        assert not overdue_open(nightly)
    assert statuses == ["stopped"] * 4 + ["done"]


async def test_nights_without_any_run_are_alerted(nightly: Nightly) -> None:
    await nightly.run()  # then the timer stops firing (a broken RECONCILE_SCHEDULE)
    nightly.world.clock.advance(24 * HOUR)
    await send_tenant_alerts(nightly.world.svc)
    assert not overdue_open(nightly)
    nightly.world.clock.advance(24 * HOUR)
    await send_tenant_alerts(nightly.world.svc)
    assert overdue_open(nightly)
