"""The nightly scan's progress: the users phase has the tenant's user count as its total
(`Directory.user_count`), kept across a resume, and no total when Graph will not count."""

from __future__ import annotations

import io

import orjson
import pytest

from shared.cli.live import write_paths, write_snapshot
from shared.cli.progress import Progress
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DirectoryError
from tests.demo_tenant import DEMO
from tests.reconcile.conftest import Nightly, killed_after_two_pages

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        self.calls.append((phase, done, total))

    def users(self) -> list[tuple[int, int | None]]:
        return [(done, total) for phase, done, total in self.calls if phase == "users"]


async def test_the_users_phase_counts_towards_the_tenants_user_count(nightly: Nightly) -> None:
    progress = Recorder()

    result = await nightly.run(progress=progress)

    assert result.users == 23
    assert progress.users() == [(0, 23), (5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    assert nightly.directory.requests["user_count"] == 1


async def test_a_resumed_run_keeps_the_total_it_read_with_the_groups(nightly: Nightly) -> None:
    await killed_after_two_pages(nightly, progress=Recorder())
    progress = Recorder()

    resumed = await nightly.run(progress=progress)

    assert resumed.resumed
    assert progress.users() == [(15, 23), (20, 23), (23, 23)]
    assert nightly.directory.requests["user_count"] == 1  # read with the groups, not again


async def test_a_watched_resume_of_an_unwatched_run_asks_for_the_count(nightly: Nightly) -> None:
    await killed_after_two_pages(nightly)  # the timer: no progress, no count
    assert nightly.directory.requests.get("user_count", 0) == 0
    progress = Recorder()

    await nightly.run(progress=progress)

    assert progress.users() == [(15, 23), (20, 23), (23, 23)]
    assert nightly.directory.requests["user_count"] == 1


async def test_a_run_without_progress_does_not_ask_for_the_count(nightly: Nightly) -> None:
    await nightly.run()

    assert nightly.directory.requests.get("user_count", 0) == 0


@pytest.mark.parametrize("status", [403, 400, 503])
async def test_a_count_graph_refuses_leaves_the_progress_without_a_total(
    nightly: Nightly, status: int
) -> None:
    nightly.directory.user_count_error = DirectoryError(status, "Denied", "no $count")
    progress = Recorder()

    result = await nightly.run(progress=progress)

    assert result.status == "done"
    assert result.users == 23
    assert progress.users() == [(5, None), (10, None), (15, None), (20, None), (23, None)]


@pytest.mark.parametrize("write", ["snapshot", "paths"])
async def test_a_live_command_whose_count_is_refused_shows_users_without_a_total(
    write: str,
) -> None:
    directory = FakeDirectory(orjson.loads(DEMO.read_bytes()), page_size=5)
    directory.user_count_error = DirectoryError(403, "Authorization_RequestDenied", "denied")
    stream = io.StringIO()
    progress = Progress(False, stream, interval=0.0)

    if write == "snapshot":
        written = await write_snapshot(directory, io.BytesIO(), progress)
        assert written == len(directory.users)
    else:
        await write_paths(directory, io.BytesIO(), "json", progress)

    users = [line for line in stream.getvalue().splitlines() if line.startswith("users: ")]
    assert users
    assert all("/" not in line.split(",")[0] for line in users)
    assert users[-1].startswith(f"users: {len(directory.users)}")
