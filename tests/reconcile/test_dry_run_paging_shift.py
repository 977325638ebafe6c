"""`reconcile --dry-run` pages users by position as the run does: a user deleted from a page
it already read moves the first user of the next page onto that page, so no page holds them.
Such a user is not gone, and the run would not resolve their findings (its finish asks Graph
for the users no page held); the dry run must not say it would. Against graphsim over HTTP."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from graphsim.app import create_app
from graphsim.server import serve_app_in_thread
from graphsim.state import SimState
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.bootstrap import in_memory_services
from shared.fakes.blobs import InMemoryBlobStore
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.run_state import USERS, Options, ReconcileResult
from shared.service.reconcile.scan import open_subjects
from shared.service.services import Services
from tests.demo_tenant import DEMO
from tests.service.world import Clock, settings_for

pytestmark = pytest.mark.anyio

TOKEN = "dry-run-paging-shift-token"
PAGE = 5
DAY = 24 * 3600


@dataclass
class Tenant:
    """graphsim's demo tenant (its state, to delete a user mid-run) and the service over it."""

    state: SimState
    svc: Services
    blobs: InMemoryBlobStore
    clock: Clock

    async def run(self, **options: Any) -> ReconcileResult:
        return await reconcile_nightly(self.svc, self.blobs, Options(**options))


@pytest.fixture
async def tenant() -> AsyncIterator[Tenant]:
    app = create_app(copy.deepcopy(orjson.loads(DEMO.read_bytes())), token=TOKEN)
    with serve_app_in_thread(app) as url:
        client = build_graph_client(url, static_token=TOKEN)
        async with GraphDirectory(client, page_size=PAGE) as directory:
            clock = Clock()
            svc = in_memory_services(
                settings_for(), directory, clock=clock.now, monotonic=clock.monotonic
            )
            yield Tenant(app.state.sim.state, svc, InMemoryBlobStore(now=clock.now), clock)


def delete_user(state: SimState, user_id: str) -> None:
    """The user deleted, as Graph shows it: gone from /users and from every group."""
    del state.users[user_id]
    state.user_order.remove(user_id)
    for group in state.groups.values():
        group["members"] = [m for m in group["members"] if m["id"] != user_id]
    for members in state.member_ids.values():
        members.discard(user_id)
    state.index.pop(user_id, None)


async def test_a_user_the_paging_skipped_is_not_gone_in_the_dry_run(tenant: Tenant) -> None:
    await tenant.run()  # the baseline
    tenant.clock.advance(DAY)
    order = list(tenant.state.user_order)
    subjects = open_subjects(tenant.svc)
    boundary = next(p for p in range(PAGE, len(order), PAGE) if order[p] in subjects)
    deleted = next(u for u in order[:boundary] if u not in subjects)  # nothing open

    def delete_once_read(phase: str, done: int, total: int | None) -> None:
        if phase == USERS and done == boundary and deleted in tenant.state.users:
            delete_user(tenant.state, deleted)  # order[boundary] moves onto a page read

    dry = await tenant.run(dry_run=True, progress=delete_once_read)
    real = await tenant.run()

    assert [line for line in dry.planned if line.startswith("resolve")] == []
    assert dry.resolved_findings == real.resolved_findings == 0
    assert dry.new_findings == real.new_findings
    assert dry.users == len(order)  # the deleted user on their page, and the skipped one
