"""The nightly finish forgets the capability records of users no page held and Graph no
longer knows: a deleted user with no open finding (the scan's gone users are only those with
one), and users deleted before the clean-up existed."""

from __future__ import annotations

import pytest

from shared.ports.tables import json_field
from shared.service.dataloss import CAPABILITIES_PK
from tests.reconcile.conftest import (
    PAGE,
    Nightly,
    killed_after_two_pages,
    mailbox_lost_after_a_baseline,
    open_codes,
)

pytestmark = pytest.mark.anyio
DAY = 24 * 3600
LONG_GONE = "0b7e5c1a-dead-4bee-8000-00000000a11e"


def record_ids(nightly: Nightly) -> set[str]:
    return {e.row_key for e in nightly.world.svc.tables.servicestate.query(CAPABILITIES_PK)}


async def without_findings(nightly: Nightly) -> str:
    """A user with a capability record and no open finding."""
    await nightly.run()
    return next(u for u in sorted(record_ids(nightly)) if not open_codes(nightly, u))


async def test_a_deleted_user_with_no_open_finding_loses_the_record() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    quiet = await without_findings(nightly)
    others = record_ids(nightly) - {quiet}
    del nightly.directory.users[quiet]
    nightly.world.clock.advance(DAY)

    await nightly.run()

    assert quiet not in record_ids(nightly)
    assert others <= record_ids(nightly)  # the users still there keep theirs


async def test_a_record_of_a_user_deleted_long_ago_goes() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    await nightly.run()
    held = {"held": {"mailbox": [["sku", "plan", []]]}, "lost": {}}
    nightly.world.svc.tables.servicestate.upsert(
        CAPABILITIES_PK, LONG_GONE, {"json": json_field(held)}
    )
    nightly.world.clock.advance(DAY)

    await nightly.run()

    assert LONG_GONE not in record_ids(nightly)


async def test_a_run_that_did_not_read_every_page_concludes_nothing_until_resumed() -> None:
    nightly = await mailbox_lost_after_a_baseline()
    quiet = await without_findings(nightly)
    assert len(nightly.directory.users) > 2 * PAGE
    del nightly.directory.users[quiet]
    nightly.world.clock.advance(DAY)

    await killed_after_two_pages(nightly)
    assert quiet in record_ids(nightly)

    result = await nightly.run()  # resumed: every page read

    assert result.status == "done"
    assert quiet not in record_ids(nightly)


async def test_a_user_moved_onto_a_page_already_read_keeps_the_record() -> None:
    """Users are paged by position: one deleted before the page a resumed run goes on from
    moves the next user onto a page already read. No page held that user, but Graph has them."""
    nightly = await mailbox_lost_after_a_baseline()
    await nightly.run()
    ids = sorted(nightly.directory.users)
    third = ids[2 * PAGE : 3 * PAGE]  # the third page, read after the resume
    moved = next(u for u in third if not open_codes(nightly, u))  # not read by id for those
    shift = third.index(moved) + 1
    held = {"held": {"mailbox": [["sku", "plan", []]]}, "lost": {}}
    nightly.world.svc.tables.servicestate.upsert(CAPABILITIES_PK, moved, {"json": json_field(held)})
    nightly.world.clock.advance(DAY)
    await killed_after_two_pages(nightly)
    for deleted in ids[:shift]:  # read on the first page, deleted since
        del nightly.directory.users[deleted]

    result = await nightly.run()  # resumed at position 10: the moved user is now before it

    assert result.status == "done"
    assert moved in record_ids(nightly)
