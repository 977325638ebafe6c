"""The nightly timer writes its reports to the blob store the composition root built.

`build_services` builds the reports container with the same storage credential as the queues
and tables (`Services.blobs`); the timer must use that one, not open its own from settings.
"""

from __future__ import annotations

import pytest

from shared.service.reconcile.nightly import run_nightly
from tests.reconcile.conftest import Nightly

pytestmark = pytest.mark.anyio


async def test_the_timer_writes_reports_to_the_services_blob_store(nightly: Nightly) -> None:
    svc = nightly.world.svc
    svc.blobs = nightly.blobs

    result = await run_nightly(svc)

    assert result.status == "done"
    assert nightly.blobs.list("nightly/")
