"""A user's reprocess ledger keeps one row per cause and evidence: each seat shortage, each
finished processing run (`after=<T>`) and each admin request adds one, so a user who is there
for years kept every one. The nightly finish now deletes a cause's rows once none of them was
written within `FINDINGS_RETENTION_DAYS` and the user has no open finding of that cause: the
policy reads only the cause's recent rows for an open finding, and a cause back after months
of quiet is a new incident."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.core.findings import COUNT_VIOLATION, MUTUALLY_EXCLUSIVE
from shared.core.reprocess import Cause
from shared.fakes.tables import InMemoryTable
from shared.service.stores import ReprocessLedger
from shared.service.stores.reprocess_ledger import DONE, OBSERVED, QUEUED, cause_token
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)
OTHER_GROUP = "5f0c8a1e-0000-4000-8000-00000000c0de"


def put(nightly: Nightly, user_id: str, cause: Cause, at: datetime, status: str) -> str:
    """A ledger row as the ledger writes it; returns its row key."""
    table = nightly.world.svc.tables.reprocessledger
    token = cause_token(cause)
    fields = {
        "code": cause.code,
        "skuId": cause.sku_id,
        "groupId": cause.group_id,
        "evidence": f'["{cause.evidence[0]}"]',
        "at": at,
        "status": status,
    }
    table.upsert(user_id, token, fields)
    return token


def rows(nightly: Nightly, user_id: str) -> set[str]:
    return {e.row_key for e in nightly.world.svc.tables.reprocessledger.query(user_id)}


def an_open_count_violation(nightly: Nightly) -> tuple[str, Cause]:
    """A user with an open CountViolation after the night's run, and its cause."""
    for entity in nightly.world.svc.tables.findings.query_all():
        f = entity.fields
        if f.get("code") == COUNT_VIOLATION and not f.get("resolvedAt") and f.get("groupId"):
            return entity.partition_key, Cause(
                COUNT_VIOLATION, str(f["skuId"]), str(f["groupId"]), ("freeSeats=0",)
            )
    raise AssertionError("the demo tenant has a CountViolation")


async def test_a_cause_quiet_for_longer_than_the_retention_loses_its_rows(
    nightly: Nightly,
) -> None:
    await nightly.run()
    user, open_cause = an_open_count_violation(nightly)
    now = nightly.world.clock.now()
    quiet = Cause(MUTUALLY_EXCLUSIVE, open_cause.sku_id, OTHER_GROUP, ("paths=a",))
    old_done = put(nightly, user, quiet, now - 120 * DAY, DONE)
    old_seen = put(nightly, user, Cause(quiet.code, quiet.sku_id, quiet.group_id, ("paths=b",)),
                   now - 95 * DAY, OBSERVED)  # fmt: skip
    still_open = put(nightly, user, Cause(open_cause.code, open_cause.sku_id, open_cause.group_id,
                     ("freeSeats>0",)), now - 200 * DAY, DONE)  # fmt: skip
    recent = Cause(MUTUALLY_EXCLUSIVE, open_cause.sku_id, "6a0c8a1e-0000-4000-8000-0000000000aa",
                   ("paths=c",))  # fmt: skip
    recent_old = put(nightly, user, recent, now - 150 * DAY, DONE)
    recent_new = put(nightly, user, Cause(recent.code, recent.sku_id, recent.group_id,
                     ("paths=d",)), now - 10 * DAY, OBSERVED)  # fmt: skip
    nightly.world.clock.advance(DAY.total_seconds())

    assert (await nightly.run()).status == "done"

    kept = rows(nightly, user)
    assert old_done not in kept  # the quiet cause: gone
    assert old_seen not in kept
    assert still_open in kept  # its finding is open: the policy reads its history
    assert {recent_old, recent_new} <= kept  # written lately: the cause is not quiet


async def test_a_reprocess_in_flight_is_never_pruned_while_recent(nightly: Nightly) -> None:
    await nightly.run()
    user, cause = an_open_count_violation(nightly)
    quiet = Cause(MUTUALLY_EXCLUSIVE, cause.sku_id, OTHER_GROUP, ("paths=a",))
    queued = put(nightly, user, quiet, nightly.world.clock.now() - DAY, QUEUED)
    nightly.world.clock.advance(DAY.total_seconds())

    await nightly.run()

    assert queued in rows(nightly, user)


def test_the_prune_deletes_over_the_row_as_read() -> None:
    """A row written meanwhile (the cause seen again) is not deleted."""

    class SeenAgainAfterTheRead(InMemoryTable):
        def query(self, pk: str) -> list:  # type: ignore[type-arg]
            read = super().query(pk)
            for row in read:
                self.update(pk, row.row_key, dict(row.fields), etag=row.etag)
            return read

    table = SeenAgainAfterTheRead("reprocessledger")
    now = datetime.fromisoformat("2026-12-04T02:00:00+00:00")
    table.upsert("u1", "t1", {"code": MUTUALLY_EXCLUSIVE, "evidence": "[]", "status": DONE,
                              "at": now - 200 * DAY})  # fmt: skip

    deleted = ReprocessLedger(table).prune_quiet("u1", now - 90 * DAY, open_causes=set())

    assert deleted == 0
    assert [e.row_key for e in table.query("u1")] == ["t1"]
