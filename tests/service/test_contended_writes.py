"""A read-change-write over a row that keeps changing is tried `WRITE_ATTEMPTS` times, then its
conflict is raised (the run's redelivery does the work again later): it does not loop, spending
Storage transactions, for as long as another writer keeps winning. Over the fake and Azurite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.ports.messages import RecomputeUsers
from shared.ports.tables import AlreadyExists, ConcurrencyConflict, EntityStore
from shared.service.dataloss import CAPABILITIES_PK
from shared.service.reconcile.owed_summaries import owe_summary
from shared.service.reconcile.run_state import SUMMARY_SENT
from shared.service.stores import ServiceState
from shared.service.stores.contention import WRITE_ATTEMPTS
from shared.service.users import recompute_users
from tests.adapters.test_findings_ledger_contract import WrittenFirstEachTime
from tests.alerts.test_immediate import sales, with_mailbox_group
from tests.alerts.world import alert_world, prime

OTHER_WRITERS = 3 * WRITE_ATTEMPTS
"""More turns than the attempts: a loop without a bound would outlast them all and succeed."""


def another_writer(store: EntityStore, pk: str, rk: str) -> list[Callable[[], object]]:
    """`OTHER_WRITERS` writes of the row by another instance, one before each of ours."""
    return [
        lambda n=n: store.upsert(pk, rk, {"json": "{}", "other": n}) for n in range(OTHER_WRITERS)
    ]


def test_a_service_state_record_still_changing_after_the_attempts_raises(
    store: EntityStore,
) -> None:
    others = another_writer(store, ServiceState.META_PK, "brake")
    state = ServiceState(WrittenFirstEachTime(store, others))  # type: ignore[arg-type]

    with pytest.raises((ConcurrencyConflict, AlreadyExists)):
        state.change("brake", lambda fields: {**fields, "ours": True})

    assert len(others) == OTHER_WRITERS - WRITE_ATTEMPTS
    stored = store.get(ServiceState.META_PK, "brake")
    assert stored is not None
    assert "ours" not in stored.fields


def test_an_owed_summary_on_a_contended_row_raises_and_writes_nothing(
    store: EntityStore,
) -> None:
    others = another_writer(store, ServiceState.META_PK, SUMMARY_SENT)
    state = ServiceState(WrittenFirstEachTime(store, others))  # type: ignore[arg-type]

    with pytest.raises((ConcurrencyConflict, AlreadyExists)):
        owe_summary(state, "reports/2026-12-04.json")

    assert len(others) == OTHER_WRITERS - WRITE_ATTEMPTS
    stored = store.get(ServiceState.META_PK, SUMMARY_SENT)
    assert stored is not None
    assert "owed" not in stored.fields


@pytest.mark.anyio
async def test_a_recompute_whose_capability_record_keeps_changing_is_handed_back(
    new_store: Callable[[], EntityStore],
) -> None:
    """The data-loss guard's record of a mailbox holder, written first by another instance
    before each of the recompute's writes: the recompute raises (its message is delivered
    again) after `WRITE_ATTEMPTS` tries."""
    world = alert_world(with_mailbox_group(1))
    store = new_store()
    [user] = sales(world)
    others = another_writer(store, CAPABILITIES_PK, user)
    contended = WrittenFirstEachTime(store, others, row_key=user)
    world.svc.tables = replace(world.svc.tables, servicestate=contended)  # type: ignore[arg-type]
    prime(world)

    with pytest.raises((ConcurrencyConflict, AlreadyExists)):
        await recompute_users(
            world.svc, RecomputeUsers(user_ids=(user,), reason="test", correlation_id="rc")
        )

    assert len(others) == OTHER_WRITERS - WRITE_ATTEMPTS
