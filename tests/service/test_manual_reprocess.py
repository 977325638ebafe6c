"""`license-guard reprocess` at the service layer: the admin's reprocess goes through the
reprocess ledger like the service's own, and leaves no row for a recompute to resend."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from shared.core import findings as codes
from shared.ports.directory import DirectoryError
from shared.ports.messages import RecomputeUsers
from shared.ports.queues import REPROCESS_USER
from shared.service.manual_reprocess import (
    CALLED,
    NOTHING,
    QUEUED,
    UNKNOWN,
    ReprocessFailed,
    manual_reprocess,
)
from shared.service.stores import ReprocessLedger
from shared.service.users import recompute_users
from tests.demo_tenant import DIEGO, E3_BASE, EMS, ENTERPRISEPACK, IRVIN, JONI, MEGAN
from tests.service.test_recompute import free_ems_seats, learned
from tests.service.test_reprocess_refused import refusing_world
from tests.service.world import World, build_world, demo_snapshot

pytestmark = pytest.mark.anyio

EMS_GROUP = "Licensing_Office365_EMS_E3"
ROOT = Path(__file__).resolve().parents[2]


async def test_a_manual_reprocess_marks_its_ledger_rows_sent(world: World) -> None:
    """Braked calls stay queued for the worker: a recompute must not send them again."""
    act_world = world.with_settings(LICENSE_GUARD_MODE="act", REPROCESS_RATE_PER_MIN="1")
    outcomes = await manual_reprocess(act_world.svc, group=EMS_GROUP)

    assert {o.status for o in outcomes} >= {CALLED, QUEUED}
    ledger = ReprocessLedger(act_world.svc.tables.reprocessledger)
    rows = list(act_world.svc.tables.reprocessledger.query_all())
    assert rows
    assert all(ledger.unsent(user_id) == [] for user_id in {e.partition_key for e in rows})


async def test_a_group_that_lost_its_licenses_no_longer_assigns_in_the_admin_reprocess(
    world: World,
) -> None:
    """The scan reads only licensed groups; a stale state from a group that dropped its
    licenses must read as the nightly and the user pipeline say it, not 'no longer exists'."""
    world.directory.set_group_licenses(E3_BASE, [])  # Diego's state from it stays

    [outcome] = await manual_reprocess(world.svc, [DIEGO], dry_run=True)

    [stale] = [f for f in outcome.findings if f.code == codes.STALE_GROUP_ASSIGNMENT]
    assert "no longer exists" not in stale.message
    assert "no longer assigns Office 365 E3" in stale.message


PRADEEP = "56e897a1-eec7-52ab-b03e-313c4c4ff925"  # ProhibitedInUsageLocationViolation (CU)


async def test_the_service_does_not_repeat_an_admin_reprocess_of_an_unchanged_cause(
    act_world: World,
) -> None:
    """The admin reprocessed Pradeep without correcting his usage location: Entra fails the
    same way, and the service must not call again as if the evidence had changed."""
    [outcome] = await manual_reprocess(act_world.svc, [PRADEEP])
    assert outcome.status == CALLED

    for _ in range(3):
        act_world.clock.advance(3600)
        again = await recompute_users(
            act_world.svc, RecomputeUsers(user_ids=(PRADEEP,), reason="t", correlation_id="r")
        )
        assert again.queued == []
        assert act_world.messages(REPROCESS_USER) == []
    assert act_world.directory.reprocessed == [PRADEEP]


BUNDLE = "0b5e6a2c-1d3f-4e4a-9b8c-7d6e5f4a3b2c"
ANN = "1c6f7b3d-2e4a-4f5b-8c9d-8e7f6a5b4c3d"


def bundle_at_cu() -> dict[str, object]:
    """The demo tenant plus a group of E3 and EMS with Ann in Cuba, where EMS is not allowed:
    both fail (all-or-none), E3 with `failedWith=EMS` (Pradeep's E3 from the Base group shows
    E3 works in CU)."""
    snapshot = demo_snapshot()
    users = {u["id"]: u for u in snapshot["users"]}
    e3_state = {
        "skuId": ENTERPRISEPACK,
        "assignedByGroup": E3_BASE,
        "disabledPlans": [],
        "state": "Active",
        "error": None,
        "lastUpdatedDateTime": "2026-11-20T08:00:00Z",
    }
    [base] = [g for g in snapshot["groups"] if g["id"] == E3_BASE]
    e3_state["disabledPlans"] = base["assignedLicenses"][0]["disabledPlans"]
    users[PRADEEP]["licenseAssignmentStates"].append(e3_state)
    users[PRADEEP]["assignedLicenses"].append(
        {"skuId": ENTERPRISEPACK, "disabledPlans": e3_state["disabledPlans"]}
    )
    base["members"].append({"@odata.type": "#microsoft.graph.user", "id": PRADEEP})
    failing = {
        "assignedByGroup": BUNDLE,
        "disabledPlans": [],
        "state": "Error",
        "error": "ProhibitedInUsageLocationViolation",
        "lastUpdatedDateTime": "2026-11-21T08:00:00Z",
    }
    snapshot["users"].append(
        {
            "id": ANN,
            "userPrincipalName": "ann@contoso.com",
            "displayName": "Ann",
            "accountEnabled": True,
            "usageLocation": "CU",
            "userType": "Member",
            "assignedLicenses": [],
            "licenseAssignmentStates": [
                {"skuId": ENTERPRISEPACK, **failing},
                {"skuId": EMS, **failing},
            ],
        }
    )
    snapshot["groups"].append(
        {
            "id": BUNDLE,
            "displayName": "Licensing_Bundle",
            "securityEnabled": True,
            "groupTypes": [],
            "assignedLicenses": [
                {"skuId": ENTERPRISEPACK, "disabledPlans": []},
                {"skuId": EMS, "disabledPlans": []},
            ],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [{"@odata.type": "#microsoft.graph.user", "id": ANN}],
        }
    )
    return snapshot


async def test_an_admin_reprocess_of_a_product_failing_with_its_group_is_not_repeated() -> None:
    """Ann's E3 fails with EMS (`failedWith=`, which the policy does not watch): after the
    admin's reprocess the service read the recorded evidence as changed ('the evidence
    changed ... the cause may be fixed') and reprocessed her again for the same cause."""
    world = build_world(bundle_at_cu(), LICENSE_GUARD_MODE="act")
    outcomes = await manual_reprocess(world.svc, [ANN, PRADEEP])
    assert [o.status for o in outcomes] == [CALLED, CALLED]
    assert any(codes.failed_with(f) for o in outcomes for f in o.findings)

    for _ in range(3):
        world.clock.advance(3600)
        again = await recompute_users(
            world.svc, RecomputeUsers(user_ids=(ANN, PRADEEP), reason="t", correlation_id="r")
        )
        assert again.queued == []
        assert world.messages(REPROCESS_USER) == []
    assert sorted(world.directory.reprocessed) == sorted([ANN, PRADEEP])


async def test_an_error_on_a_direct_assignment_is_not_reprocessed_by_the_admin_command() -> None:
    """reprocessLicenseAssignment re-runs group-based assignments only (the policy alerts
    instead for the same reason): the command called Graph for Megan's direct EMS error and
    reported it 'called', as if the reprocess could clear it."""
    snapshot = demo_snapshot()
    [megan] = [u for u in snapshot["users"] if u["id"] == MEGAN]
    megan["licenseAssignmentStates"] += [
        {
            "skuId": EMS,
            "assignedByGroup": None,
            "disabledPlans": [],
            "state": "Error",
            "error": "CountViolation",
            "lastUpdatedDateTime": "2026-11-21T08:00:00Z",
        }
    ]
    world = build_world(snapshot, LICENSE_GUARD_MODE="act")

    [outcome] = await manual_reprocess(world.svc, [MEGAN])

    assert outcome.status == NOTHING
    assert "group-based assignments only" in outcome.detail
    assert world.directory.reprocessed == []


async def test_an_admin_reprocess_graph_refused_is_not_made_later_by_the_app() -> None:
    """Graph refused the admin's own call (403: the admin may not manage licenses): the command
    failed, but its ledger rows stayed queued and unsent, so the user's next recompute sent
    them ('queued earlier, never sent') and the app made the call under its own identity, for
    a cause the policy would not have reprocessed (Pradeep's usage location is unchanged)."""
    world, graph = refusing_world()
    with pytest.raises(ReprocessFailed) as raised:  # the command's one line names the user
        await manual_reprocess(world.svc, [PRADEEP])
    assert isinstance(raised.value.error, DirectoryError)
    assert raised.value.error.status == 403
    graph.refusing = False

    again = await recompute_users(
        world.svc, RecomputeUsers(user_ids=(PRADEEP,), reason="t", correlation_id="r")
    )

    assert again.queued == []
    assert world.messages(REPROCESS_USER) == []
    assert graph.reprocessed == []


ADELE = "5b3bdede-7059-50e0-a04b-b5bcb87ef90e"  # PendingGroupAssignment (E3 Base, complete)


@pytest.mark.parametrize("user_id", [IRVIN, ADELE], ids=["count-violation", "pending"])
async def test_the_service_does_not_repeat_an_admin_reprocess_of_a_gated_cause(
    act_world: World, user_id: str
) -> None:
    """Seats are free (or the group finished processing) and the admin reprocessed the user;
    the error persists for the same cause. The admin's row recorded the finding's evidence,
    not the policy's (`freeSeats>0`, `licenseProcessingState=...`, `after=`): the policy read
    it as a closed gate's entry, a new `after=`, and reprocessed the user once more."""
    await learned(act_world)
    free_ems_seats(act_world, 3)
    [outcome] = await manual_reprocess(act_world.svc, [user_id])
    assert outcome.status == CALLED

    for _ in range(3):
        act_world.clock.advance(900)
        again = await recompute_users(
            act_world.svc, RecomputeUsers(user_ids=(user_id,), reason="t", correlation_id="r")
        )
        assert again.queued == []
        assert act_world.messages(REPROCESS_USER) == []
    assert act_world.directory.reprocessed == [user_id]


async def test_a_seat_promised_to_a_queued_reprocess_is_not_free_for_the_admin(
    act_world: World,
) -> None:
    """EMS has one free seat, and the service has queued Joni's reprocess for it: the admin
    reprocessing Irvin is told there is no free seat, and the call is recorded as made while
    seats were short (so the service still reprocesses him once a seat is really free)."""
    world = await learned(act_world)
    free_ems_seats(world, 1)
    queued = await recompute_users(
        world.svc, RecomputeUsers(user_ids=(JONI,), reason="t", correlation_id="r")
    )
    assert queued.queued == [JONI]

    [dry] = await manual_reprocess(world.svc, [IRVIN], dry_run=True)
    [outcome] = await manual_reprocess(world.svc, [IRVIN])

    assert "no free seat of EMS now" in dry.detail
    assert "no free seat of EMS now" in outcome.detail
    [row] = [
        e
        for e in world.svc.tables.reprocessledger.query(IRVIN)
        if e.fields["code"] == codes.COUNT_VIOLATION
    ]
    assert "freeSeats=0" in str(row.fields["evidence"])


async def test_the_admins_own_queued_seat_is_free_for_the_admin(act_world: World) -> None:
    """Joni's own reprocess queued by the service holds her seat, not another's: the admin
    reprocessing her is not told the seat is gone."""
    world = await learned(act_world)
    free_ems_seats(world, 1)
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=(JONI,), reason="t", correlation_id="r")
    )

    [dry] = await manual_reprocess(world.svc, [JONI], dry_run=True)

    assert "no free seat" not in dry.detail


async def test_one_free_seat_is_promised_to_one_user_of_the_command(act_world: World) -> None:
    world = await learned(act_world)
    free_ems_seats(world, 1)

    outcomes = await manual_reprocess(world.svc, [IRVIN, JONI], dry_run=True)

    warned = ["no free seat of EMS now" in o.detail for o in outcomes]
    assert sorted(warned) == [False, True]


class DeletedBeforeTheCall:
    """Crash points as a test registers them (`Services.crash_points`): here the user is
    deleted from the tenant between the admin's read and the reprocess call."""

    def __init__(self, world: World, user_id: str) -> None:
        self.world = world
        self.user_id = user_id

    def reached(self, name: str) -> None:
        if name == "reprocess.after_brake":
            self.world.directory.users.pop(self.user_id, None)


async def test_a_user_deleted_before_the_call_is_not_found_not_called(act_world: World) -> None:
    """Graph answers the reprocess of a user deleted since the read 404: the admin's request
    was not carried out, so the outcome says so and the command exits 1 ("not found"), not
    a status the exit code and the summary do not know."""
    svc = replace(act_world.svc, crash_points=DeletedBeforeTheCall(act_world, PRADEEP))

    [outcome] = await manual_reprocess(svc, [PRADEEP])

    assert outcome.status == UNKNOWN
    assert "deleted" in outcome.detail
    assert act_world.directory.reprocessed == []


LIST_GROUP = """
import asyncio
from shared.service.manual_reprocess import manual_reprocess
from tests.service.world import build_world

async def main() -> None:
    world = build_world()
    for o in await manual_reprocess(world.svc, group="Licensing_Office365_EMS_E3", dry_run=True):
        print(o.user)

asyncio.run(main())
"""


def test_a_group_reprocess_lists_its_users_in_the_same_order_every_run() -> None:
    """`reprocess --group` took the members in error as a set: the order (and so which users
    got the seats left, and the admin's list) changed with each process's hash seed."""
    listed = []
    for seed in ("1", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", LIST_GROUP],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        listed.append(done.stdout.splitlines())
    assert len(listed[0]) >= 3
    assert listed[0] == listed[1]


async def test_a_group_reprocess_takes_the_users_in_error_in_graph_s_order(world: World) -> None:
    group_id = next(
        c.id for c in await world.directory.licensed_group_configs() if c.display_name == EMS_GROUP
    )
    in_error = await world.directory.members_with_license_errors(group_id)
    users = await world.directory.users_by_id(in_error)
    outcomes = await manual_reprocess(world.svc, group=EMS_GROUP, dry_run=True)
    listed = [o.user for o in outcomes]
    wanted = [f"{u['displayName']} <{u['userPrincipalName']}>" for u in users.values()]
    assert len(wanted) >= 2
    assert listed[: len(wanted)] == wanted
