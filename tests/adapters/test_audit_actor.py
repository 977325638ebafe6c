"""The service's reading of "who did it" from audit entries shaped as graphsim (and, per the
directoryaudit-list sample, Entra) writes them."""

from __future__ import annotations

from graphsim.state import SimState
from shared.core.audit import audit_actor
from tests.graphsim.conftest import G_ONPREM, G_PLAIN, USERS, frozen_clock, make_tenant


def test_sync_admin_and_app_changes_are_attributed_as_the_audit_log_shows_them() -> None:
    state = SimState(make_tenant(), frozen_clock())
    state.queue_onprem_change("add", G_ONPREM, USERS[7])
    state.run_sync_cycle()
    state.add_member(G_PLAIN, USERS[0], "admin")
    state.add_member(G_PLAIN, USERS[1], "app:11111111-2222-4333-8444-555555555555")
    sync, admin, app = state.audit[:3]

    assert audit_actor(sync) == (
        "Entra Connect sync (Sync_GRAPHSIM_0f1e2d3c4b5a@graphsim.onmicrosoft.com)"
    )
    assert audit_actor(admin) == "admin@graphsim.onmicrosoft.com"
    assert audit_actor(app) == "graphsim client app"
    assert audit_actor({"initiatedBy": {}}) is None
