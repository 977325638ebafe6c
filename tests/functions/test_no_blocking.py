"""A slow storage call blocks its own invocation only: the host keeps answering the webhook
and runs other functions meanwhile.

The app runs on the DevHost as the Functions host runs it (sync functions in its thread pool,
async ones on its one event loop), with in-memory services registered in the composition
root. One poison queue's storage call hangs until the test releases it; while the poison watch
hangs in it, a change notification is answered and the sync watch runs to completion. Were any
of them async, the hanging call would hold the host's loop and neither would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

import function_app
from devhost.host import DevHost
from devhost.index import app_functions
from shared.bootstrap import use
from shared.fakes.queues import InMemoryQueue
from shared.ports.queues import GROUPS_CHANGED, REPROCESS_USER, poison_name
from tests.demo_tenant import E3_BASE
from tests.leftover_threads import no_leftover_threads  # noqa: F401 - autouse fixture
from tests.service.world import World, body, build_world, notification

KEY = "no-blocking-function-key"
MASTER = "no-blocking-master-key"
YEARLY = "0 0 0 1 1 *"  # never during the test: fired on demand
RUNNING = {"graph_notifications", "poison_watch", "sync_watch"}
WAIT = 30.0


@dataclass
class StalledQueue(InMemoryQueue):
    """A queue whose count waits for `release`: a storage call that takes as long as the test
    wants (the poison watch counts every poison queue)."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def approximate_count(self) -> int:
        self.reached.set()
        assert self.release.wait(WAIT), "never released"
        return super().approximate_count()


@pytest.fixture
def stalled() -> Iterator[tuple[World, StalledQueue]]:
    world = build_world()
    world.subscribe()
    queue = StalledQueue(poison_name(REPROCESS_USER))
    world.svc.queues.poison[queue.name] = queue
    use(world.svc)
    try:
        yield world, queue
    finally:
        queue.release.set()
        use(None)


@pytest.fixture
def host() -> Iterator[DevHost]:
    others = {
        f"AzureWebJobs.{f.get_function_name()}.Disabled": "true"
        for f in app_functions(function_app.app)
        if f.get_function_name() not in RUNNING
    }
    settings = others | {"POISON_WATCH_SCHEDULE": YEARLY, "SYNC_WATCH_SCHEDULE": YEARLY}
    with DevHost(
        function_app.app, settings, function_key=KEY, master_key=MASTER, host_json={}
    ) as running:
        yield running


def test_a_slow_storage_call_stalls_only_its_own_invocation(
    stalled: tuple[World, StalledQueue], host: DevHost
) -> None:
    world, queue = stalled
    started = httpx.post(
        f"{host.base_url}/admin/functions/poison_watch",
        headers={"x-functions-key": MASTER},
        content=json.dumps({"input": ""}),
        timeout=WAIT,
    )
    assert started.status_code == 202
    assert queue.reached.wait(WAIT), "the poison watch never reached its storage call"

    # while the poison watch hangs in its storage call:
    answer = httpx.post(host.url_for("graph_notifications"), content=body(notification(E3_BASE)))
    assert answer.status_code == 202
    assert len(world.messages(GROUPS_CHANGED)) == 1
    watched = host.fire_timer("sync_watch", timeout=WAIT)
    assert watched.outcome == "succeeded", watched.error
    [poison_watch] = host.invocations_of("poison_watch")
    assert poison_watch.outcome == "running"  # still in its storage call

    queue.release.set()
    host.wait_idle(timeout=WAIT)
    [poison_watch] = host.invocations_of("poison_watch")
    assert poison_watch.outcome == "succeeded", poison_watch.error
