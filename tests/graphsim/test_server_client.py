"""Real HTTP: serve_in_thread + SimClient, and the `python -m graphsim` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from graphsim.client import SimClient

from .conftest import E3, G_ONPREM, G_SALES, USERS, make_tenant
from .receiver import receiver


def test_sim_client_drives_the_tenant(sync_server: str) -> None:
    before = set(threading.enumerate())
    auth = {"Authorization": "Bearer t"}
    with SimClient(sync_server) as ctl, httpx.Client(headers=auth, base_url=sync_server) as g:
        assert ctl.add_member(G_ONPREM, USERS[7]) == {"queued": True}
        assert ctl.sync_cycle()["applied"] == 1
        assert ctl.add_member(G_SALES, USERS[7]) == {"queued": False}
        ctl.set_prepaid_units(E3, enabled=4)
        ctl.remove_member(G_SALES, USERS[0])
        ctl.set_usage_location(USERS[7], "DE")
        ctl.set_duplicate_proxy(USERS[1])
        r = g.get(f"/users/{USERS[1]}?$select=licenseAssignmentStates")
        assert r.json()["licenseAssignmentStates"][0]["state"] == "Active"  # no reprocess yet
        g.post(f"/users/{USERS[1]}/reprocessLicenseAssignment")
        r = g.get(f"/users/{USERS[1]}?$select=licenseAssignmentStates")
        assert r.json()["licenseAssignmentStates"][0]["error"] == "UniquenessViolation"
        counters = ctl.counters()
        assert counters["GET /users/{id}"] == {"200": 2}
        assert counters["POST /users/{id}/reprocessLicenseAssignment"] == {"200": 1}
        now = ctl.now()
        assert ctl.advance_clock(hours=1) > now
        ctl.set_throttle(budget=1, windowSeconds=100)
        g.get("/organization")
        assert g.get("/organization").status_code == 429
        ctl.set_throttle(enabled=False)
        assert ctl.status()["pendingUsers"] == 0
        with receiver() as rec:
            body = {
                "changeType": "updated",
                "notificationUrl": rec.url,
                "resource": "groups",
                "expirationDateTime": "2025-01-08T00:00:00Z",
            }
            assert g.post("/subscriptions", json=body).status_code == 201
            ctl.add_member(G_SALES, USERS[0])
            assert ctl.drain()["quiet"]
            assert len(rec.notifications()) == 1
            assert ctl.deliveries()[-1]["outcome"] == "delivered"
        assert ctl.outbox() == []
        ctl.reset()
        assert g.get("/subscriptions").json()["value"] == []
    after = {t for t in threading.enumerate() if t.is_alive()}
    assert not {t for t in after - before if t.name.startswith("graphsim")}


def test_cli_serves_a_snapshot_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(make_tenant()))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphsim", "--tenant", str(path), "--port", "0", "--token", "T"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("graphsim listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[-1]
        assert url.endswith("/v1.0")
        r = httpx.get(f"{url}/users?$top=2", headers={"Authorization": "Bearer T"}, timeout=10)
        assert r.status_code == 200
        assert len(r.json()["value"]) == 2
        assert httpx.get(f"{url}/users", headers={"Authorization": "Bearer x"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_a_protected_user_refuses_app_writes_over_the_control_api(sync_server: str) -> None:
    """`PUT /_sim/users/{id}/protected`: a member of a restricted management administrative
    unit. Graph's 403 for its reprocess and assignLicense, whatever the token; other users and,
    once out of the unit, the user itself are written as before."""
    auth = {"Authorization": "Bearer t"}
    with SimClient(sync_server) as ctl, httpx.Client(headers=auth, base_url=sync_server) as g:
        assert ctl.set_protected(USERS[1]) == {"protectedUsers": [USERS[1]]}
        refused = g.post(f"/users/{USERS[1].upper()}/reprocessLicenseAssignment")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
        body = {"addLicenses": [], "removeLicenses": []}
        assert g.post(f"/users/{USERS[1]}/assignLicense", json=body).status_code == 403
        assert g.post(f"/users/{USERS[2]}/reprocessLicenseAssignment").status_code == 200
        assert ctl.set_protected(USERS[1], protected=False) == {"protectedUsers": []}
        assert g.post(f"/users/{USERS[1]}/reprocessLicenseAssignment").status_code == 200
        counts = ctl.counters()["POST /users/{id}/reprocessLicenseAssignment"]
        assert counts == {"403": 1, "200": 2}
