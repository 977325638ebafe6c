"""The users phase pages by position: a user deleted before the page a resumed run goes on
from moves every later user one place up, so the first user of that page is on no page the
run reads. Such a user is not gone: the finish must not resolve their findings as a deleted
user's, and the reports must still hold them."""

from __future__ import annotations

import pytest

from tests.reconcile.conftest import Nightly, killed_after_two_pages, open_codes, user_id

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


async def test_a_user_skipped_by_a_deletion_before_the_resumed_page_keeps_their_findings(
    nightly: Nightly,
) -> None:
    await nightly.run()  # the baseline
    nightly.world.clock.advance(DAY)
    lidia = user_id(nightly, "Lidia Holloway")  # the eleventh user by id: the third page's first
    before = open_codes(nightly, lidia)
    assert before == ["Other", "RedundantDirectAssignment"]
    await killed_after_two_pages(nightly)
    del nightly.directory.users[user_id(nightly, "David Abbott")]  # on the first page

    result = await nightly.run()

    assert result.status == "done"
    assert open_codes(nightly, lidia) == before
    assert result.summary is not None
    assert result.summary.resolved_findings == 0
    assert result.users == 23  # David on the first page, before he was deleted, and Lidia
    paths = nightly.blobs.get(f"nightly/{result.date}/{result.run_id}/paths.csv") or b""
    assert b"Lidia Holloway" in paths
