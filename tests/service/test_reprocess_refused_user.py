"""A 403 on one user's reprocess while the app's token holds the permission (the user is in a
restricted management administrative unit, or privileged): that user's causes are refused and
the user's own `ReprocessRefused` finding opens; nothing pauses, the other users are
reprocessed, and the admin is not told to grant a permission the app holds. Without the
permission in the token (or roles unknown) the tenant-wide pause stands. Against the fake at
the port and against graphsim over HTTP."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.fakes.directory import FakeDirectory
from shared.ports.messages import RecomputeUsers
from shared.ports.tables import Entity
from shared.service.refused_writes import REPROCESS_REFUSED, WRITES_REFUSED
from shared.service.reprocessing import reprocess_user
from shared.service.stores import DONE, REFUSED, REFUSED_RETRY, FindingsLedger
from shared.service.users import recompute_users
from tests.credentials import READ_ROLES, MintingCredential
from tests.demo_tenant import ADELE, ALEX, DEMO, DIEGO, IRVIN, JONI
from tests.service.test_reprocess_refused import acting_services, manual, visible
from tests.service.test_reprocess_worker import queued_reprocesses, statuses
from tests.service.world import Clock, World, build_world

pytestmark = pytest.mark.anyio

WRITE_ROLES = frozenset({*READ_ROLES, "User.ReadWrite.All"})


def protected_world(roles: frozenset[str] | None = WRITE_ROLES) -> tuple[World, FakeDirectory]:
    """IRVIN is out of the app's reach; the app's token carries `roles`."""
    world = build_world(LICENSE_GUARD_MODE="act")
    world.directory.granted_app_roles = roles
    world.directory.protected_users = frozenset({IRVIN})
    return world, world.directory


def open_of(world: World, code: str) -> list[Entity]:
    return FindingsLedger(world.svc.tables.findings).open_by_code([code])


async def test_one_protected_user_is_refused_while_the_others_are_reprocessed() -> None:
    world, graph = protected_world()

    outcomes = [await reprocess_user(world.svc, m) for m in manual(DIEGO, IRVIN, ADELE, ALEX)]

    assert [o.status for o in outcomes] == ["called", "refused", "called", "called"]
    assert graph.reprocessed == [DIEGO, ADELE, ALEX]
    assert open_of(world, WRITES_REFUSED) == []  # no "grant the permission", no pause
    [refused] = open_of(world, REPROCESS_REFUSED)
    assert refused.partition_key == IRVIN  # a finding of the user, alerted as the user's
    assert refused.fields["severity"] == "warning"
    assert "restricted management administrative unit" in str(refused.fields["message"])
    remedy = str(refused.fields["remedy"])
    # Licenses are managed in the Microsoft 365 admin center since September 2024 (the Entra
    # admin center's license pages are read-only); PowerShell reaches the same Graph action.
    assert "Microsoft 365 admin center" in remedy
    assert "Reprocess" in remedy
    assert "Entra admin center > Users" not in remedy
    assert "Invoke-MgLicenseUser" in remedy
    [(after, _)] = [(await reprocess_user(world.svc, m), m) for m in manual(JONI)]
    assert after.status == "called"  # later calls are not held back either


@pytest.mark.parametrize("roles", [frozenset(READ_ROLES), None])
async def test_a_403_without_the_permission_in_the_token_still_pauses_everyone(
    roles: frozenset[str] | None,
) -> None:
    """Read roles only, or roles not known (a static token): the tenant-wide pause."""
    world, graph = protected_world(roles)

    outcomes = [await reprocess_user(world.svc, m) for m in manual(IRVIN, DIEGO)]

    assert [o.status for o in outcomes] == ["refused", "braked"]
    assert graph.reprocessed == []
    assert len(open_of(world, WRITES_REFUSED)) == 1
    assert open_of(world, REPROCESS_REFUSED) == []


async def test_a_user_refusal_on_the_probe_ends_the_pause() -> None:
    """The probe after a pause meets a protected user with the permission back in the token:
    the app's permission is proven, so the pause ends and WritesRefused resolves."""
    world, graph = protected_world(frozenset(READ_ROLES))
    first, waiting = manual(IRVIN, DIEGO)
    await reprocess_user(world.svc, first)
    assert (await reprocess_user(world.svc, waiting)).status == "braked"
    graph.granted_app_roles = WRITE_ROLES
    world.clock.advance(3600)

    probe = await reprocess_user(world.svc, manual(IRVIN)[0])
    after = [await reprocess_user(world.svc, m) for m in visible(world)]

    assert probe.status == "refused"
    assert [o.status for o in after] == ["called"]
    assert open_of(world, WRITES_REFUSED) == []
    assert [e.partition_key for e in open_of(world, REPROCESS_REFUSED)] == [IRVIN]


async def test_the_recompute_keeps_the_user_finding_until_the_user_is_fixed() -> None:
    """The recompute finds only what the evaluation finds: it leaves ReprocessRefused open
    while the user still has a finding a reprocess would fix, and resolves it once an admin
    fixed the user by hand."""
    world, graph = protected_world()
    [msg] = await queued_reprocesses(world, IRVIN)
    assert (await reprocess_user(world.svc, msg)).status == "refused"
    again = RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="again")

    soon = await recompute_users(world.svc, again)

    assert len(open_of(world, REPROCESS_REFUSED)) == 1
    assert not any(REPROCESS_REFUSED in k for k in soon.resolved)
    assert statuses(world, IRVIN) == [REFUSED]
    fixed = [
        s | {"state": "Active", "error": "None"}
        for s in graph.users[IRVIN]["licenseAssignmentStates"]
    ]
    graph.set_user_state(IRVIN, licenseAssignmentStates=fixed)  # reprocessed by hand
    later = await recompute_users(world.svc, again)
    assert open_of(world, REPROCESS_REFUSED) == []
    assert any(REPROCESS_REFUSED in k for k in later.resolved)


async def test_an_accepted_reprocess_of_the_user_resolves_the_finding() -> None:
    """Out of the unit again: the retry a day later is accepted and the finding resolves."""
    world, graph = protected_world()
    [msg] = await queued_reprocesses(world, IRVIN)
    await reprocess_user(world.svc, msg)
    assert len(open_of(world, REPROCESS_REFUSED)) == 1
    graph.protected_users = frozenset()
    world.clock.advance(REFUSED_RETRY.total_seconds())
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(IRVIN,), reason="test", correlation_id="later")
    )

    [retry] = visible(world)
    assert (await reprocess_user(world.svc, retry)).status == "called"
    assert statuses(world, IRVIN) == [DONE]
    assert open_of(world, REPROCESS_REFUSED) == []


# --------------------------------------------------------------------------- graphsim over HTTP

SECRET = "refused-user-test-secret-0123456789"


async def test_graphsim_one_protected_user_costs_no_pause() -> None:
    """The app holds User.ReadWrite.All; graphsim refuses IRVIN (a restricted management
    administrative unit's member) with Graph's 403 and reprocesses the others."""
    tenant: dict[str, Any] = copy.deepcopy(orjson.loads(DEMO.read_bytes()))
    writer = MintingCredential(SECRET, claims={"roles": sorted(WRITE_ROLES)})
    clock = Clock()
    with serve_in_thread(tenant, token=SECRET) as url, SimClient(url) as sim:
        sim.set_protected(IRVIN)
        async with GraphDirectory(build_graph_client(url, credential=writer)) as directory:
            svc = acting_services(directory, clock)
            outcomes = [await reprocess_user(svc, m) for m in manual(DIEGO, IRVIN, ADELE)]
        counts = sim.counters()["POST /users/{id}/reprocessLicenseAssignment"]

    assert [o.status for o in outcomes] == ["called", "refused", "called"]
    assert counts == {"200": 2, "403": 1}
    ledger = FindingsLedger(svc.tables.findings)
    assert ledger.open_by_code([WRITES_REFUSED]) == []
    assert [e.partition_key for e in ledger.open_by_code([REPROCESS_REFUSED])] == [IRVIN]
