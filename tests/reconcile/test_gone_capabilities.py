"""The nightly scan cleans up the data-loss guard's capability records of deleted users: a
user gone with an open loss keeps the loss (marked gone) until its time is up, then the record
goes; its index row goes with it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.fakes.tables import InMemoryTable
from shared.ports.tables import EntityStore
from shared.service.dataloss import CAPABILITIES_PK
from shared.service.gone_capabilities import GONE_CAPABILITIES_PK
from shared.service.stores import FindingsLedger
from tests.reconcile.conftest import mailbox_lost_after_a_baseline, open_codes, user_id

pytestmark = pytest.mark.anyio
DAY = 24 * 3600


async def test_a_deleted_users_record_goes_once_its_loss_is_over() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    alannah = user_id(nightly, "Alannah Shaw")
    await nightly.run()  # the loss is found
    state = nightly.world.svc.tables.servicestate
    assert "DataLossRisk" in open_codes(nightly, alannah)
    del nightly.directory.users[alannah]
    nightly.world.clock.advance(DAY)

    await nightly.run()  # gone: her findings resolve, the open loss stays
    assert open_codes(nightly, alannah) == []
    assert state.get(CAPABILITIES_PK, alannah) is not None
    assert state.get(GONE_CAPABILITIES_PK, alannah) is not None
    nightly.world.clock.advance(94 * DAY)  # the mailbox's 30 days, the OneDrive's 93

    await nightly.run()

    assert state.get(CAPABILITIES_PK, alannah) is None
    assert state.get(GONE_CAPABILITIES_PK, alannah) is None


async def test_a_deleted_users_record_without_a_loss_goes_the_night_after() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    diego = user_id(nightly, "Diego Siciliani")
    await nightly.run()
    state = nightly.world.svc.tables.servicestate
    assert state.get(CAPABILITIES_PK, diego) is not None
    ledger = FindingsLedger(nightly.world.svc.tables.findings)
    assert ledger.open_findings(diego)  # the scan looks for users with open findings
    del nightly.directory.users[diego]
    nightly.world.clock.advance(DAY)

    await nightly.run()

    assert state.get(CAPABILITIES_PK, diego) is None


async def test_a_user_restored_within_the_period_keeps_the_loss_and_leaves_the_index() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    alannah = user_id(nightly, "Alannah Shaw")
    await nightly.run()
    deleted = nightly.directory.users.pop(alannah)
    nightly.world.clock.advance(DAY)
    await nightly.run()
    nightly.directory.users[alannah] = deleted | {
        "assignedLicenses": [],
        "licenseAssignmentStates": [],
    }  # restored from the recycle bin; Entra had removed the license
    nightly.world.clock.advance(DAY)

    await nightly.run()

    state = nightly.world.svc.tables.servicestate
    assert "DataLossRisk" in open_codes(nightly, alannah)
    assert state.get(CAPABILITIES_PK, alannah) is not None
    assert state.get(GONE_CAPABILITIES_PK, alannah) is None


class RecordWriteDies(InMemoryTable):
    """`servicestate` where the first write to one user's capability record fails (the worker
    dies there)."""

    def __init__(self, inner: EntityStore, user_id: str) -> None:
        super().__init__(inner.name)
        for row in inner.query_all():
            self.upsert(row.partition_key, row.row_key, row.fields)
        self.user_id, self.failing = user_id, True

    def update(self, pk: str, rk: str, fields: Any, *, etag: str) -> str:
        self._dies(pk, rk)
        return super().update(pk, rk, fields, etag=etag)

    def delete(self, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._dies(pk, rk)
        super().delete(pk, rk, etag=etag)

    def _dies(self, pk: str, rk: str) -> None:
        if self.failing and pk == CAPABILITIES_PK and rk == self.user_id:
            self.failing = False
            raise OSError("worker died")


async def test_a_run_that_died_cleaning_the_record_cleans_it_when_resumed() -> None:
    """The record is cleaned before the findings resolve: resolved first, the resumed run no
    longer finds the user gone (it looks for users with open findings) and the record stays."""
    nightly = await mailbox_lost_after_a_baseline()
    alannah = user_id(nightly, "Alannah Shaw")
    await nightly.run()
    del nightly.directory.users[alannah]
    nightly.world.clock.advance(DAY)
    svc = nightly.world.svc
    svc.tables = replace(svc.tables, servicestate=RecordWriteDies(svc.tables.servicestate, alannah))
    with pytest.raises(OSError, match="worker died"):
        await nightly.run()

    result = await nightly.run()  # resumed

    assert result.status == "done"
    assert open_codes(nightly, alannah) == []
    stored = svc.tables.servicestate.get(CAPABILITIES_PK, alannah)
    assert stored is not None
    assert '"gone"' in str(stored.fields["json"])
    assert svc.tables.servicestate.get(GONE_CAPABILITIES_PK, alannah) is not None
