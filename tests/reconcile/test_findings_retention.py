"""Resolved findings are kept `FINDINGS_RETENTION_DAYS` (90) after they resolved, then the
nightly finish deletes them; one whose resolution an alert still owes (mailed as open, its
resolution not yet in a digest) is kept until a digest reported it, at most twice as long.
Before, every finding ever resolved stayed in the `findings` table, which the errors re-check
reads every 15 minutes and the nightly scan several times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.tables import Entity, EntityValue
from shared.service.alerts.digest import run_digest
from shared.service.stores import FindingsLedger
from tests.reconcile.conftest import Nightly, SmallPages, alerting_nightly
from tests.service.world import build_world
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)
QUEUE = "queue:recompute-users"
"""A subject the nightly run leaves alone (the poison watch reconciles it)."""


def poisoned(key: str, *, first_seen: datetime, resolved_at: datetime | None = None,
             **marks: str) -> dict[str, EntityValue | None]:  # fmt: skip
    return {
        "key": f"{QUEUE}|-|PoisonedMessage|{key}",
        "code": "PoisonedMessage",
        "severity": "error",
        "groupId": key,
        "message": "A message failed every attempt",
        "remedy": "Read it",
        "firstSeen": first_seen,
        "lastSeen": resolved_at or first_seen,
        "resolvedAt": resolved_at,
        "runId": "run",
        **marks,
    }


def put(nightly: Nightly, key: str, **fields: Any) -> None:
    nightly.world.svc.tables.findings.upsert(QUEUE, key, poisoned(key, **fields))


def kept(nightly: Nightly) -> set[str]:
    return {e.row_key for e in nightly.world.svc.tables.findings.query(QUEUE)}


async def test_a_finding_resolved_longer_ago_than_the_retention_goes_at_the_nightly_finish(
    nightly: Nightly,
) -> None:
    now = nightly.world.clock.now()
    put(nightly, "old", first_seen=now - 200 * DAY, resolved_at=now - 91 * DAY)
    put(nightly, "recent", first_seen=now - 200 * DAY, resolved_at=now - 89 * DAY)
    put(nightly, "open", first_seen=now - 400 * DAY)  # open: never pruned, however old

    assert (await nightly.run()).status == "done"

    assert kept(nightly) == {"recent", "open"}


async def test_the_retention_is_a_setting() -> None:
    nightly = Nightly(build_world(fake=SmallPages, FINDINGS_RETENTION_DAYS="30"))
    now = nightly.world.clock.now()
    put(nightly, "month", first_seen=now - 40 * DAY, resolved_at=now - 31 * DAY)
    put(nightly, "week", first_seen=now - 40 * DAY, resolved_at=now - 7 * DAY)

    await nightly.run()

    assert kept(nightly) == {"week"}


async def test_a_resolution_no_digest_reported_yet_is_kept_until_one_did() -> None:
    """Mailed as open, resolved, and the digest that reports it resolved has not gone out yet
    (mail failing for months): deleting the row would drop that line from the next digest."""
    nightly = alerting_nightly()
    await nightly.run()  # the baseline
    now = nightly.world.clock.now()
    put(nightly, "owed", first_seen=now - 200 * DAY, resolved_at=now - 91 * DAY,
        alertedIn="digest-earlier")  # fmt: skip
    put(nightly, "told", first_seen=now - 200 * DAY, resolved_at=now - 91 * DAY,
        alertedIn="digest-earlier", resolvedIn="digest-later")  # fmt: skip
    nightly.world.clock.advance(DAY.total_seconds())
    await nightly.run()
    assert kept(nightly) == {"owed"}

    digest = await run_digest(nightly.world.svc, sleep=Sleeps())  # reports it resolved
    assert digest.resolved >= 1
    nightly.world.clock.advance(DAY.total_seconds())
    await nightly.run()

    assert kept(nightly) == set()


async def test_a_resolution_no_alert_will_report_goes_after_twice_the_retention() -> None:
    """Muted by an exclusion since, say: no digest reports it; it is not kept for ever."""
    nightly = alerting_nightly()
    now = nightly.world.clock.now()
    put(nightly, "muted", first_seen=now - 400 * DAY, resolved_at=now - 181 * DAY,
        alertedIn="digest-earlier")  # fmt: skip

    await nightly.run()

    assert kept(nightly) == set()


async def test_what_a_digest_owes_does_not_hang_on_the_runs_own_alert_settings(
    nightly: Nightly,
) -> None:
    """`license-guard reconcile` runs the same finish from an admin's shell, usually without
    the app's ALERT_SENDER: read as "alerts off", it deleted resolutions the app's next digest
    still owed. Owed is read from the row alone."""
    now = nightly.world.clock.now()
    put(nightly, "owed", first_seen=now - 200 * DAY, resolved_at=now - 91 * DAY,
        alertedIn="digest-earlier")  # fmt: skip
    put(nightly, "long-owed", first_seen=now - 400 * DAY, resolved_at=now - 181 * DAY,
        alertedIn="digest-earlier")  # fmt: skip

    await nightly.run()

    assert kept(nightly) == {"owed"}


class ReopenedAfterTheRead(InMemoryTable):
    """The findings table; a recompute reopens the finding right after the prune read it."""

    def query_all(self) -> Any:
        rows = list(super().query_all())
        for row in rows:
            self.update(row.partition_key, row.row_key,
                        dict(row.fields) | {"resolvedAt": None}, etag=row.etag)  # fmt: skip
        return iter(rows)


def test_a_finding_found_again_while_the_prune_read_it_stays() -> None:
    table = ReopenedAfterTheRead("findings")
    now = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    table.upsert(QUEUE, "back", poisoned("back", first_seen=now - 200 * DAY,
                                          resolved_at=now - 91 * DAY))  # fmt: skip

    deleted = FindingsLedger(table).prune_resolved(now, 90 * DAY)

    assert deleted == 0
    [row] = table.query(QUEUE)
    assert isinstance(row, Entity)
    assert "resolvedAt" not in row.fields


async def test_a_reconcile_from_an_admins_shell_prunes_no_history(nightly: Nightly) -> None:
    """`license-guard reconcile` reads the settings of the shell it runs in, not the app's: its
    FINDINGS_RETENTION_DAYS is the default (90) where the app may keep a year. The history is
    the nightly timer's to prune."""
    now = nightly.world.clock.now()
    put(nightly, "old", first_seen=now - 200 * DAY, resolved_at=now - 91 * DAY)

    await nightly.run(prune_history=False, force=True)

    assert kept(nightly) == {"old"}
