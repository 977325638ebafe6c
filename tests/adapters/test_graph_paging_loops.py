"""Reads against a server whose paging never ends (graphsim's `stuckPages` fault: a page asked
by a nextLink answers no items and that very URL again; `endlessPages`: a new URL each time).

A `/groups/delta` round raises a 502 `DirectoryError` (retried later by the queue) instead of
following nextLinks until the function times out; a round of many pages that does end is still
read in full. Any other collection read, as Graph has done for `/users?$filter=...`
(microsoftgraph/microsoft-graph-docs-contrib#7849: "the skiptoken never changes"), raises a 502
too instead of asking for the same page until the process (a CLI scan, a nightly run) is
killed; the `license-guard` scans then exit 2 with one line."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator

import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.cli.main import EXIT_BAD_INPUT, main
from shared.ports.directory import DirectoryError
from shared.service.nested import read_members
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


def _requests(sim: SimClient, key: str) -> int:
    return sum(sim.counters().get(key, {}).values())


def _delta_requests(sim: SimClient) -> int:
    return _requests(sim, "GET /groups/delta")


async def _all_users(directory: GraphDirectory) -> int:
    link: str | None = None
    seen = 0
    while True:
        page, link = await directory.users_page(link)
        seen += len(page)
        if link is None:
            return seen


async def _all_members(directory: GraphDirectory, group_id: str) -> list[str]:
    link: str | None = None
    found: list[str] = []
    while True:
        page, link = await directory.group_members_page(group_id, link)
        found += page
        if link is None:
            return found


async def test_a_users_page_whose_nextlink_names_itself_raises(sim_url: str) -> None:
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(stuckPages=["/users"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(_all_users(directory), timeout=20)
        finally:
            await directory.aclose()
        assert _requests(sim, "GET /users") == 2  # the first page, and the one naming itself
    assert (raised.value.status, raised.value.code) == (502, "NextLinkRepeated")
    assert raised.value.is_transient


async def test_a_members_page_whose_nextlink_names_itself_raises(sim_url: str) -> None:
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(stuckPages=["/groups/{id}/members"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(_all_members(directory, BIG), timeout=20)
        finally:
            await directory.aclose()
    assert (raised.value.status, raised.value.code) == (502, "NextLinkRepeated")


async def test_a_collection_read_in_one_call_stops_at_a_repeated_nextlink(sim_url: str) -> None:
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(stuckPages=["/groups/{id}/members"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(directory.group_member_ids(BIG), timeout=20)
        finally:
            await directory.aclose()
        assert _requests(sim, "GET /groups/{id}/members") == 2
    assert (raised.value.status, raised.value.code) == (502, "NextLinkRepeated")


async def test_pages_that_move_on_are_read_in_full(sim_url: str) -> None:
    directory = _directory(sim_url)
    try:
        assert set(await _all_members(directory, BIG)) == user_members(BIG)
        assert set(await directory.group_member_ids(BIG)) == user_members(BIG)
        assert await _all_users(directory) == len(TENANT["users"])
    finally:
        await directory.aclose()


@pytest.mark.timeout(30)
def test_a_snapshot_of_a_tenant_whose_paging_is_stuck_exits_2_with_one_line(
    sim_url: str, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimClient(sim_url) as sim:
        # the first page empty with a link (as Graph may answer), which then names itself
        sim.set_faults(emptyFirstPages=["/users"], stuckPages=["/users"])
        out = f"{tmp_path}/snapshot.json"
        status = main(
            ["snapshot", "--quiet", "--out", out, "--graph-base-url", sim_url, "--token", TOKEN]
        )
    assert status == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "NextLinkRepeated" in error


async def test_a_groups_members_that_cycle_over_two_pages_stop_the_read(sim_url: str) -> None:
    """`read_members` (the nightly's nested groups, the event path's) calls
    `group_members_page` once a page; pages that link A -> B -> A were read until the process
    was killed (each call checks only for a page naming itself)."""
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(cyclingPages=["/groups/{id}/members"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(read_members(directory, BIG), timeout=20)
        finally:
            await directory.aclose()
        assert _requests(sim, "GET /groups/{id}/members") == 4  # first, L0, A, B (-> A)
    assert (raised.value.status, raised.value.code) == (502, "NextLinkRepeated")


async def test_a_subscription_listing_whose_nextlink_names_itself_raises(sim_url: str) -> None:
    """The keeper lists the app's subscriptions, which Graph pages: a listing whose nextLink
    never moved on kept the keeper asking until the function timed out."""
    directory = _directory(sim_url)
    with SimClient(sim_url) as sim:
        sim.set_faults(emptyFirstPages=["/subscriptions"], stuckPages=["/subscriptions"])
        try:
            with pytest.raises(DirectoryError) as raised:
                await asyncio.wait_for(directory.subscriptions(), timeout=20)
        finally:
            await directory.aclose()
    assert (raised.value.status, raised.value.code) == (502, "NextLinkRepeated")


# --------------------------------------------------------------------------- /groups/delta


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
