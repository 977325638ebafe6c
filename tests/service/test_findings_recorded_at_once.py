"""Two recompute messages for one user at once (a group change and a user change; the host
runs up to 16 messages at once, and instances scale out) record its findings once."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from shared.ports.messages import RecomputeUsers
from shared.ports.tables import Entity, EntityStore, safe_key
from shared.service.users import recompute_users
from tests.demo_tenant import IRVIN
from tests.service.test_recompute import free_ems_seats, learned
from tests.service.world import build_world


class ReadTogether:
    """The findings table as two recomputes of one user see it: each thread's first read of
    the user's findings waits until the other has read them too, so both decide what is new
    before either writes."""

    def __init__(self, table: EntityStore, user_id: str, all_read: threading.Barrier) -> None:
        self._table, self._pk, self._all_read = table, safe_key(user_id), all_read
        self._waited = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def query(self, pk: str) -> list[Entity]:
        rows = self._table.query(pk)
        if pk == self._pk and not getattr(self._waited, "done", False):
            self._waited.done = True
            self._all_read.wait(timeout=60)
        return rows


def test_a_finding_two_recomputes_found_at_once_is_new_once_and_keeps_its_queued_reprocess() -> (
    None
):
    """Both read no row for Irvin's CountViolation, both called it new and wrote it whole
    (upsert): it was new twice (each new finding is alerted), and the row of the recompute
    that did not queue the reprocess (the other one had) could overwrite the one that did,
    so the alert said nothing of the reprocess queued for him. A new row is now created only
    if absent; the run that finds it written meanwhile writes over it as found again."""
    world = asyncio.run(learned(build_world(LICENSE_GUARD_MODE="act")))
    free_ems_seats(world, 1)
    findings = world.svc.tables.findings
    table = ReadTogether(findings, IRVIN, threading.Barrier(2))
    world.svc.tables = replace(world.svc.tables, findings=table)
    messages = [
        RecomputeUsers(user_ids=(IRVIN,), reason=reason, correlation_id=reason)
        for reason in ("group change", "user change")
    ]

    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(asyncio.run, recompute_users(world.svc, m)) for m in messages]
        outcomes = [run.result(timeout=120) for run in runs]

    assert sorted(len(o.queued) for o in outcomes) == [0, 1]
    new = [f.key for o in outcomes for f in o.new_findings if f.code == "CountViolation"]
    assert len(new) == 1
    [row] = [e for e in findings.query(IRVIN) if e.fields["code"] == "CountViolation"]
    assert row.fields.get("reprocessQueuedAt") is not None
