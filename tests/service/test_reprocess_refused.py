"""A reprocess Graph refuses (401/403: the write permission is missing) is not retried: the
message completes, its causes are recorded as refused (not in flight, queued again a day later),
the app's reprocesses pause (one call an hour tries again) and one tenant-level finding says
which permission to grant. Against the fake at the port and against graphsim over HTTP."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.bootstrap import in_memory_services
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import Directory, DirectoryError
from shared.ports.messages import RecomputeUsers, ReprocessUser
from shared.ports.queues import REPROCESS_USER
from shared.service.manual_reprocess import CALLED, ReprocessFailed, manual_reprocess
from shared.service.refused_writes import REFUSAL_PAUSE, WRITES_REFUSED
from shared.service.reprocessing import reprocess_user
from shared.service.services import Services
from shared.service.stores import (
    DONE,
    QUEUED,
    REFUSED,
    REFUSED_RETRY,
    FindingsLedger,
    ReprocessLedger,
)
from shared.service.users import recompute_users
from tests.credentials import READ_ROLES, MintingCredential
from tests.demo_tenant import ADELE, ALEX, DEMO, DIEGO, IRVIN, JONI
from tests.service.test_reprocess_worker import queued_reprocesses, statuses
from tests.service.world import Clock, World, build_world, drain, settings_for

pytestmark = pytest.mark.anyio

PAUSE = REFUSAL_PAUSE.total_seconds()


class Refusing(FakeDirectory):
    """The fake Graph refusing the reprocess write (a port-level fake) while `refusing`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusing = True
        self.status = 403
        self.refused = 0

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        if self.refusing:
            self.refused += 1
            raise DirectoryError(
                self.status,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return await super().reprocess_license_assignment(user_id)


def refusing_world(**settings: str) -> tuple[World, Refusing]:
    world = build_world(fake=Refusing, LICENSE_GUARD_MODE="act", **settings)
    assert isinstance(world.directory, Refusing)
    return world, world.directory


def manual(*user_ids: str) -> list[ReprocessUser]:
    """Messages without causes (as `license-guard reprocess` hands braked calls over)."""
    return [
        ReprocessUser(user_id=u, causes=(), reason="test", correlation_id=f"m-{u[:8]}")
        for u in user_ids
    ]


def writes_refused_open(world: World) -> bool:
    return any(
        e.fields.get("code") == WRITES_REFUSED
        for e in FindingsLedger(world.svc.tables.findings).open_by_code([WRITES_REFUSED])
    )


def visible(world: World) -> list[ReprocessUser]:
    return world.messages_of(REPROCESS_USER, ReprocessUser)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_reprocess_completes_and_records_its_causes_as_refused(
    status: int,
) -> None:
    """Not raised (the host would retry it four more times, then poison it): completed."""
    world, graph = refusing_world()
    graph.status = status
    [msg] = await queued_reprocesses(world, IRVIN)

    outcome = await reprocess_user(world.svc, msg)

    assert outcome.status == "refused"
    assert graph.refused == 1
    assert statuses(world, IRVIN) == [REFUSED]
    ledger = ReprocessLedger(world.svc.tables.reprocessledger)
    assert ledger.seats_in_flight(IRVIN, now=world.clock.now()) == set()
    assert writes_refused_open(world)
    world.clock.advance(PAUSE * 2)
    assert visible(world) == []  # nothing re-sent: the recompute decides again


async def test_a_refused_cause_is_queued_again_a_day_later_not_on_every_recompute() -> None:
    world, graph = refusing_world()
    [msg] = await queued_reprocesses(world, IRVIN)
    await reprocess_user(world.svc, msg)
    again = RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="again")

    soon = await recompute_users(world.svc, again)
    world.clock.advance(REFUSED_RETRY.total_seconds() - 60)
    still = await recompute_users(world.svc, again)

    assert soon.queued == still.queued == []
    assert soon.alerts == still.alerts == []  # not "already reprocessed": it never was
    assert visible(world) == []
    world.clock.advance(60)
    graph.refusing = False
    later = await recompute_users(world.svc, again)
    assert later.queued == [IRVIN]
    [retry] = visible(world)
    assert (await reprocess_user(world.svc, retry)).status == "called"
    assert statuses(world, IRVIN) == [DONE]
    assert not writes_refused_open(world)


async def test_while_writes_are_refused_one_call_an_hour_tries_not_one_per_user() -> None:
    world, graph = refusing_world()
    first, *others = manual(DIEGO, ADELE, ALEX, JONI)

    assert (await reprocess_user(world.svc, first)).status == "refused"
    paused = [await reprocess_user(world.svc, m) for m in others]

    assert [(o.status, o.delay_seconds) for o in paused] == [("braked", PAUSE)] * 3
    assert graph.refused == 1
    world.clock.advance(PAUSE)
    back = visible(world)
    assert back == others
    outcomes = [await reprocess_user(world.svc, m) for m in back]
    assert [o.status for o in outcomes] == ["refused", "braked", "braked"]  # one probe
    assert graph.refused == 2
    assert writes_refused_open(world)

    graph.refusing = False  # the permission is granted
    world.clock.advance(PAUSE)
    outcomes = [await reprocess_user(world.svc, m) for m in visible(world)]
    assert [o.status for o in outcomes] == ["called", "called"]
    assert graph.reprocessed == [ALEX, JONI]
    assert graph.refused == 2
    assert not writes_refused_open(world)


async def test_the_pause_holds_back_queued_causes_as_in_flight() -> None:
    """A message waiting out the pause keeps its causes queued (in flight), like a braked one."""
    world, _ = refusing_world()
    await reprocess_user(world.svc, manual(DIEGO)[0])
    [msg] = await queued_reprocesses(world, IRVIN)

    outcome = await reprocess_user(world.svc, msg)

    assert (outcome.status, outcome.delay_seconds) == ("braked", PAUSE)
    assert statuses(world, IRVIN) == [QUEUED]


async def test_an_admins_reprocess_is_not_held_back_by_the_apps_refusal() -> None:
    """`license-guard reprocess` calls with the admin's sign-in: the app's pause does not hold
    it, and its success says nothing about the app's permission (the finding stays open)."""
    world, graph = refusing_world()
    await reprocess_user(world.svc, manual(DIEGO)[0])
    graph.refusing = False

    [outcome] = await manual_reprocess(world.svc, [IRVIN])

    assert outcome.status == CALLED
    assert graph.reprocessed == [IRVIN]
    assert writes_refused_open(world)


async def test_an_admins_refused_reprocess_raises_and_opens_no_tenant_finding() -> None:
    world, _ = refusing_world()

    with pytest.raises(ReprocessFailed) as raised:  # the user and Graph's error, for the CLI
        await manual_reprocess(world.svc, [IRVIN])

    assert raised.value.error.status == 403
    assert not writes_refused_open(world)


# --------------------------------------------------------------------------- graphsim over HTTP

SECRET = "refused-writes-test-secret-0123456789"


def acting_services(directory: Directory, clock: Clock) -> Services:
    """In-memory services in act mode over `directory` (graphsim's, over HTTP)."""
    return in_memory_services(
        settings_for(LICENSE_GUARD_MODE="act"),
        directory,
        clock=clock.now,
        monotonic=clock.monotonic,
    )


@pytest.fixture
def graphsim() -> Iterator[tuple[str, SimClient]]:
    tenant = copy.deepcopy(orjson.loads(DEMO.read_bytes()))
    with serve_in_thread(tenant, token=SECRET) as url, SimClient(url) as sim:
        yield url, sim


async def test_graphsim_refusing_the_write_costs_one_call_per_pause(
    graphsim: tuple[str, SimClient],
) -> None:
    """The identity was granted the read roles only: graphsim answers 403
    Authorization_RequestDenied, as Graph does; the rest wait instead of calling."""
    url, sim = graphsim
    read_only = MintingCredential(SECRET, claims={"roles": list(READ_ROLES)})
    clock = Clock()
    async with GraphDirectory(build_graph_client(url, credential=read_only)) as directory:
        svc = acting_services(directory, clock)
        first = [await reprocess_user(svc, m) for m in manual(DIEGO, ADELE, ALEX, IRVIN)]
        clock.advance(PAUSE)
        back = drain(svc.queues.by_name(REPROCESS_USER))
        after = [await reprocess_user(svc, m) for m in back if isinstance(m, ReprocessUser)]

    assert [o.status for o in first] == ["refused", "braked", "braked", "braked"]
    assert [o.status for o in after] == ["refused", "braked", "braked"]  # one probe an hour
    assert sim.counters() == {"403": {"403": 2}}  # graphsim counts a denied call apart
    [finding] = FindingsLedger(svc.tables.findings).open_by_code([WRITES_REFUSED])
    assert "User.ReadWrite.All" in str(finding.fields["remedy"])
    assert "license-guard preflight --principal-id" in str(finding.fields["remedy"])
