"""The service's reading of "who did it" from audit entries shaped as graphsim (and, per the
directoryaudit-list sample, Entra) writes them."""

from __future__ import annotations

from graphsim.state import SimState
from shared.core.audit import audit_actor
from shared.ports.directory import AuditEntry
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


def test_the_directory_port_reads_an_entry_as_a_typed_audit_entry() -> None:
    state = SimState(make_tenant(), frozen_clock())
    state.add_member(G_PLAIN, USERS[0], "admin")
    state.add_member(G_PLAIN, USERS[1], "app:11111111-2222-4333-8444-555555555555")
    admin_raw, app_raw = state.audit[:2]

    admin, app = AuditEntry.from_graph(admin_raw), AuditEntry.from_graph(app_raw)

    assert admin.actor == "admin@graphsim.onmicrosoft.com"
    assert not admin.by_app
    assert (admin.activity, admin.when) == (
        admin_raw["activityDisplayName"],
        admin_raw["activityDateTime"],
    )
    assert admin.target_ids == tuple(t["id"] for t in admin_raw["targetResources"])
    assert [t.label for t in admin.targets] == [
        t.get("displayName") or t.get("userPrincipalName") or t["id"]
        for t in admin_raw["targetResources"]
    ]
    assert app.by_app
    assert app.actor == app.app_name == "graphsim client app"
    assert app.app_id == app_raw["initiatedBy"]["app"]["appId"]
