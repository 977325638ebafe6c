"""A /groups/delta round against a server that never ends it (graphsim's `stuckPages` and
`endlessPages` faults): `GraphDirectory.group_delta` raises a 502 `DirectoryError` (retried
later by the queue) instead of following nextLinks until the function times out; a round of
many pages that does end is still read in full."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator

import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.ports.directory import DirectoryError
from tests.adapters.test_directory_contract import BIG, TENANT, TOKEN, user_members

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim_url() -> Iterator[str]:
    with serve_in_thread(copy.deepcopy(TENANT)) as url:
        yield url


def _directory(url: str, **kwargs: int) -> GraphDirectory:
    return GraphDirectory(build_graph_client(url, static_token=TOKEN), page_size=50, **kwargs)


def _delta_requests(sim: SimClient) -> int:
    return sum(sim.counters().get("GET /groups/delta", {}).values())


async def test_a_nextlink_sent_twice_ends_the_round_with_an_error(sim_url: str) -> None:
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(stuckPages=["/groups/delta"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(directory.group_delta([BIG], None), timeout=20)
        finally:
            await directory.aclose()
        # the first page and the page its link names (which names itself): not asked again
        assert _delta_requests(sim) == 2
    assert (raised.value.status, raised.value.code) == (502, "DeltaNextLinkRepeated")
    assert raised.value.is_transient


async def test_a_round_that_never_ends_stops_at_its_page_limit(sim_url: str) -> None:
    directory = _directory(sim_url, delta_pages_per_group=5)
    with SimClient(sim_url) as sim:
        sim.set_faults(endlessPages=["/groups/delta"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(directory.group_delta([BIG], None), timeout=20)
        finally:
            await directory.aclose()
        assert _delta_requests(sim) == 10  # 5 pages for its one group, and 5 over
    assert (raised.value.status, raised.value.code) == (502, "DeltaTooManyPages")


async def test_a_round_of_several_pages_within_the_limit_is_read_in_full(sim_url: str) -> None:
    directory = _directory(sim_url, delta_pages_per_group=2)  # 4 pages for one group
    with SimClient(sim_url) as sim:
        try:
            rnd = await directory.group_delta([BIG], None)
        finally:
            await directory.aclose()
        assert _delta_requests(sim) == 4  # 120 members and the group, 40 entries a page
    assert set(rnd.groups[BIG].added) == user_members(BIG)
