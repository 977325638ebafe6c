"""A run cut short that is resumed on a later night (every firing of its own night stopped or
failed) evaluates the users it has left against the licensed groups and their members as the
tenant has them then, not as it read them the night it started."""

from __future__ import annotations

import pytest

from shared.ports.messages import RecomputeUsers
from shared.service.reconcile.run_state import RUN
from shared.service.stores import ServiceState
from shared.service.users import recompute_users
from tests.demo_tenant import E3_BASE
from tests.reconcile.conftest import Nightly, killed_after_two_pages, open_codes, user_id

pytestmark = pytest.mark.anyio

DAY = 24 * 3600


async def groups_read_after_resuming(nightly: Nightly, seconds: int) -> int:
    """Resume the run cut short `seconds` later: how often the licensed groups were read."""
    nightly.world.clock.advance(seconds)
    result = await nightly.run()
    assert result.resumed
    return nightly.directory.requests["licensed_group_configs"]


async def test_a_run_resumed_the_next_night_reads_the_groups_again(nightly: Nightly) -> None:
    await nightly.run()  # the baseline
    nightly.world.clock.advance(DAY)
    await killed_after_two_pages(nightly)
    nightly.world.clock.advance(DAY)
    # Lynne (the thirteenth user by id: a page the run has not read) joined the E3 Base
    # group since, and Entra licensed her from it.
    lynne = user_id(nightly, "Lynne Robbins")
    nightly.directory.add_member(E3_BASE, lynne)
    [e3] = nightly.directory.groups[E3_BASE]["assignedLicenses"]
    state = {"assignedByGroup": E3_BASE, "state": "Active", "error": None}
    nightly.directory.set_user_state(
        lynne, assignedLicenses=[e3], licenseAssignmentStates=[{**e3, **state}]
    )

    result = await nightly.run()

    assert result.resumed
    assert result.status == "done"
    assert open_codes(nightly, lynne) == []


async def test_a_run_resumed_the_same_night_goes_on_with_the_groups_it_read(
    nightly: Nightly,
) -> None:
    await killed_after_two_pages(nightly)

    assert await groups_read_after_resuming(nightly, 3600) == 1  # the 03:00 firing


async def test_a_checkpoint_kept_before_the_groups_read_time_was_resumes_by_its_start(
    nightly: Nightly,
) -> None:
    """A checkpoint an older version wrote has no `groupsReadAt`: its start stands for it."""
    await killed_after_two_pages(nightly)
    state = ServiceState(nightly.world.svc.tables.servicestate)
    run = state.get(RUN)
    assert run is not None
    state.put(RUN, {k: v for k, v in run.fields.items() if k != "groupsReadAt"})

    assert await groups_read_after_resuming(nightly, DAY) == 2


async def test_a_run_resumed_the_next_night_settles_what_a_recompute_found_in_between(
    nightly: Nightly,
) -> None:
    """The resumed run's pages count as read when it read the groups again, not when it
    started: else a finding a recompute recorded in between (a later read than the run's
    start) would stand against the resumed run's newer view."""
    await nightly.run()  # the baseline
    nightly.world.clock.advance(DAY)
    await killed_after_two_pages(nightly)
    nightly.world.clock.advance(6 * 3600)
    lynne = user_id(nightly, "Lynne Robbins")
    nightly.directory.add_member(E3_BASE, lynne)
    [e3] = nightly.directory.groups[E3_BASE]["assignedLicenses"]
    waiting = {"assignedByGroup": E3_BASE, "state": "Error", "error": "CountViolation"}
    nightly.directory.set_user_state(lynne, licenseAssignmentStates=[{**e3, **waiting}])
    message = RecomputeUsers(user_ids=(lynne,), reason="test", correlation_id="recompute-1")
    await recompute_users(nightly.world.svc, message)
    assert "CountViolation" in open_codes(nightly, lynne)
    active = {**waiting, "state": "Active", "error": None}  # a seat came free: Entra licensed her
    nightly.directory.set_user_state(
        lynne, assignedLicenses=[e3], licenseAssignmentStates=[{**e3, **active}]
    )
    nightly.world.clock.advance(DAY)

    result = await nightly.run()

    assert result.resumed
    assert open_codes(nightly, lynne) == []
