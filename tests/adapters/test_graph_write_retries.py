"""A write is never repeated after Graph may have carried it out, and a throttled write is.

msgraph-core's retry handler repeats 429, 503 and 504 for every method, but a 503 can come
after Graph applied the write (graphsim's `apply503`): repeating a reprocess or a draft send
then writes twice. `GraphDirectory` turns that retry off for writes and repeats a write only on
429, which Graph answers before doing anything, after its Retry-After.

Docs: https://learn.microsoft.com/graph/throttling (429 with Retry-After: retry after it),
https://learn.microsoft.com/graph/api/user-reprocesslicenseassignment (the write)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.ports.directory import DirectoryError
from tests.graphsim.conftest import USERS, make_tenant

pytestmark = pytest.mark.anyio
REPROCESS = "POST /users/{id}/reprocessLicenseAssignment"


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(copy.deepcopy(make_tenant())) as url:
        yield url


def calls(counted: dict[str, dict[str, int]]) -> dict[str, int]:
    return dict(counted.get(REPROCESS, {}))


async def test_a_write_whose_answer_is_a_503_after_it_applied_is_not_repeated(
    graph_url: str,
) -> None:
    with SimClient(graph_url) as sim:
        sim.clear_counters()
        sim.set_faults(writesOnly=True, next=["apply503"])
        try:
            async with GraphDirectory(build_graph_client(graph_url, static_token="t")) as graph:
                with pytest.raises(DirectoryError) as raised:
                    await graph.reprocess_license_assignment(USERS[0])
        finally:
            sim.set_faults(writesOnly=False, next=[])
        counted = calls(sim.counters())

    assert raised.value.status == 503  # ambiguous: the caller settles it (docs/reliability.md)
    assert counted == {"200+apply503": 1}  # carried out once, and not sent again


async def test_a_throttled_write_is_repeated_after_retry_after(graph_url: str) -> None:
    with SimClient(graph_url) as sim:
        sim.clear_counters()
        sim.set_faults(writesOnly=True, next=["429"], retryAfter=0)
        try:
            async with GraphDirectory(build_graph_client(graph_url, static_token="t")) as graph:
                found = await graph.reprocess_license_assignment(USERS[0])
        finally:
            sim.set_faults(writesOnly=False, next=[])
        counted = calls(sim.counters())

    assert found is True
    assert counted == {"429": 1, "200": 1}


async def test_a_write_throttled_for_longer_than_it_may_wait_is_handed_back(
    graph_url: str,
) -> None:
    """A Retry-After beyond the transport's cap (`max_retry_after`) is not slept through (that
    could outlast host.json's functionTimeout): the 429 comes back with its Retry-After, so the
    caller re-queues the work for then (`reprocessing`: the message's visibility delay)."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = build_graph_client(graph_url, static_token="t")
    with SimClient(graph_url) as sim:
        sim.clear_counters()
        sim.set_faults(writesOnly=True, next=["429"], retryAfter=3600)
        try:
            async with GraphDirectory(client, sleep=sleep) as graph:
                with pytest.raises(DirectoryError) as raised:
                    await graph.reprocess_license_assignment(USERS[0])
        finally:
            sim.set_faults(writesOnly=False, next=[], retryAfter=1)
        counted = calls(sim.counters())

    assert raised.value.status == 429
    assert raised.value.retry_after == 3600
    assert waits == []  # nothing slept
    assert counted == {"429": 1}  # not carried out: the work is still owed
