"""Writes and licensing behaviour: $ref, on-prem sync, assignLicense, reprocess, sendMail,
licenseProcessingState progression."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from .conftest import E3, EMS, G_ONPREM, G_PLAIN, G_SALES, USERS, Harness, make_tenant

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).parent / "graph-examples"


def ref(uid: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"}


async def states(sim: Harness, uid: str) -> list[dict[str, object]]:
    r = await sim.get(f"/users/{uid}?$select=id,licenseAssignmentStates")
    return list(r.json()["licenseAssignmentStates"])


async def test_add_member_licenses_user_and_consumes_a_seat(sim: Harness) -> None:
    r = await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref(USERS[7]))
    assert r.status_code == 204
    await sim.settle()
    st = await states(sim, USERS[7])
    assert [(s["assignedByGroup"], s["skuId"], s["state"]) for s in st] == [(G_SALES, E3, "Active")]
    skus = {s["skuId"]: s for s in (await sim.get("/subscribedSkus")).json()["value"]}
    assert skus[E3]["consumedUnits"] == 5
    r = await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref(USERS[7]))
    assert r.status_code == 400  # already a member
    r = await sim.http.delete(f"/groups/{G_SALES}/members/{USERS[7]}/$ref")
    assert r.status_code == 204
    await sim.settle()
    assert await states(sim, USERS[7]) == []
    r = await sim.http.delete(f"/groups/{G_SALES}/members/{USERS[7]}/$ref")
    assert r.status_code == 404


async def test_count_violation_is_not_retried_when_seats_free_up(sim: Harness) -> None:
    sim.sim.state.set_prepaid_units(E3, {"enabled": 4})
    await sim.post(f"/groups/{G_SALES}/members/$ref", json=ref(USERS[7]))
    await sim.settle()
    st = await states(sim, USERS[7])
    assert st[0]["error"] == "CountViolation"
    sim.sim.state.set_prepaid_units(E3, {"enabled": 10})
    assert (await states(sim, USERS[7]))[0]["error"] == "CountViolation"
    r = await sim.post(f"/users/{USERS[7]}/reprocessLicenseAssignment")
    assert r.status_code == 200
    assert r.json()["id"] == USERS[7]
    assert (await states(sim, USERS[7]))[0]["state"] == "Active"
    r = await sim.post(f"/users/{USERS[0][:-4]}0000/reprocessLicenseAssignment")
    assert r.status_code == 404


async def test_on_prem_synced_group_rejects_ref_changes_until_sync(sim: Harness) -> None:
    r = await sim.post(f"/groups/{G_ONPREM}/members/$ref", json=ref(USERS[7]))
    assert r.status_code == 400
    assert "on-premises mastered" in r.json()["error"]["message"]
    r = await sim.http.delete(f"/groups/{G_ONPREM}/members/{USERS[4]}/$ref")
    assert r.status_code == 400
    sim.sim.state.queue_onprem_change("add", G_ONPREM, USERS[7])
    sim.sim.state.clock.advance(1800)
    result = sim.sim.state.run_sync_cycle()
    assert result["applied"] == 1
    await sim.settle()
    org = (await sim.get("/organization")).json()["value"][0]
    assert org["onPremisesLastSyncDateTime"] == "2025-01-06T09:30:00Z"
    assert [s["skuId"] for s in await states(sim, USERS[7])] == [EMS]
    audits = (await sim.get("/auditLogs/directoryAudits")).json()["value"]
    add = next(a for a in audits if a["activityDisplayName"] == "Add member to group")
    # Entra Connect's changes: its sync account (a user) and "Action Client Name" =
    # "DirectorySync" (https://learn.microsoft.com/en-us/graph/api/directoryaudit-list sample)
    assert add["initiatedBy"]["app"] is None
    assert add["initiatedBy"]["user"]["userPrincipalName"].startswith("Sync_")
    assert {
        "displayName": "Action Client Name",
        "oldValue": None,
        "newValue": "DirectorySync",
    } in add["targetResources"][0]["modifiedProperties"]
    assert add["targetResources"][1]["groupType"] == "azureAD"


async def test_pending_on_prem_changes_from_snapshot() -> None:
    h = Harness(
        make_tenant(
            pendingOnPremChanges=[{"op": "remove", "groupId": G_ONPREM, "userId": USERS[4]}]
        )
    )
    try:
        h.sim.state.run_sync_cycle()
        await h.settle()
        assert await states(h, USERS[4]) == []
    finally:
        await h.close()


async def test_user_assign_license_direct(sim: Harness) -> None:
    body = {"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []}
    r = await sim.post(f"/users/{USERS[6]}/assignLicense", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["assignedLicenses"] == [{"disabledPlans": [], "skuId": EMS}]
    st = await states(sim, USERS[6])
    assert st[0]["assignedByGroup"] is None
    r = await sim.post(
        f"/users/{USERS[0]}/assignLicense", json={"addLicenses": [], "removeLicenses": [E3]}
    )
    assert r.status_code == 400  # inherited from a group
    r = await sim.post(
        f"/users/{USERS[6]}/assignLicense", json={"addLicenses": [], "removeLicenses": [EMS]}
    )
    assert r.status_code == 200
    assert r.json()["assignedLicenses"] == []
    bad = {"addLicenses": [{"skuId": "00000000-0000-0000-0000-000000000000"}], "removeLicenses": []}
    assert (await sim.post(f"/users/{USERS[6]}/assignLicense", json=bad)).status_code == 400


async def test_group_assign_license_is_202_and_processes(sim: Harness) -> None:
    body = json.loads((EXAMPLES / "group-assignlicense-request-add.json").read_text())
    body["addLicenses"] = [{"skuId": EMS, "disabledPlans": []}]
    r = await sim.post(f"/groups/{G_PLAIN}/assignLicense", json=body)
    assert r.status_code == 202
    assert r.headers["Location"].endswith(f"/groups/{G_PLAIN}")
    assert r.json()["assignedLicenses"] == [{"disabledPlans": [], "skuId": EMS}]
    await sim.settle()
    assert [s["skuId"] for s in await states(sim, USERS[6])] == [EMS]
    r = await sim.post(
        f"/groups/{G_PLAIN}/assignLicense", json={"addLicenses": [], "removeLicenses": [EMS]}
    )
    assert r.status_code == 202
    await sim.settle()
    assert await states(sim, USERS[6]) == []


async def test_processing_rate_drives_license_processing_state() -> None:
    h = Harness(make_tenant(processingRatePerMinute=2, processingDelaySeconds=60))
    try:
        url = f"/groups/{G_SALES}?$select=id,licenseProcessingState"
        await h.post(
            f"/groups/{G_SALES}/assignLicense",
            json={"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []},
        )
        assert (await h.get(url)).json()["licenseProcessingState"]["state"] == "QueuedForProcessing"
        h.sim.advance(60)  # delay elapses; nobody processed yet
        assert (await h.get(url)).json()["licenseProcessingState"]["state"] == "QueuedForProcessing"
        h.sim.advance(60)  # 2 users processed
        assert (await h.get(url)).json()["licenseProcessingState"][
            "state"
        ] == "ProcessingInProgress"
        got = [len(await states(h, u)) for u in USERS[:4]]
        assert sorted(got) == [1, 1, 2, 2]
        status = await h.sim.drain(settle=True)
        assert status["pendingUsers"] == 0
        assert (await h.get(url)).json()["licenseProcessingState"]["state"] == "ProcessingComplete"
        assert [len(await states(h, u)) for u in USERS[:4]] == [2, 2, 2, 2]
        entries = (await h.get("/auditLogs/directoryAudits")).json()["value"]
        finish = entries[0]["targetResources"][0]
        # the summary is the target's modifiedProperty "Result", not resultReason
        # (https://learn.microsoft.com/en-us/entra/identity/users/licensing-group-advanced)
        assert finish["modifiedProperties"] == [
            {
                "displayName": "Result",
                "oldValue": None,
                "newValue": "Users successfully assigned licenses: 4, "
                "Users for whom license assignment failed: 0.",
            }
        ]
        assert entries[0]["resultReason"] == ""
        audits = [a["activityDisplayName"] for a in entries]
        assert audits[:3] == [
            "Finish applying group based license to users",
            "Start applying group based license to users",
            "Set group license",
        ]
    finally:
        await h.close()


async def test_send_mail_goes_to_outbox(sim: Harness) -> None:
    for name in (
        "sendmail-request.json",
        "sendmail-request-with-headers.json",
        "sendmail-request-with-attachment.json",
    ):
        body = json.loads((EXAMPLES / name).read_text())
        r = await sim.post(f"/users/{USERS[0]}/sendMail", json=body)
        assert r.status_code == 202, r.text
        assert r.content == b""
    out = sim.sim.state.outbox
    assert [m["subject"] for m in out] == [
        "Meet for lunch?",
        "9/9/2018: concert",
        "Meet for lunch?",
    ]
    assert out[0]["saveToSentItems"] is False
    assert out[0]["ccRecipients"] == ["danas@contoso.onmicrosoft.com"]
    assert out[1]["bodyContentType"] == "HTML"
    assert out[1]["internetMessageHeaders"][0] == {
        "name": "x-custom-header-group-name",
        "value": "Nevada",
    }
    assert out[2]["attachments"][0]["size"] == len(b"Hello World!")


async def test_send_mail_errors(sim: Harness) -> None:
    expected = json.loads((EXAMPLES / "sendmail-error-invalid-mime.json").read_text())
    r = await sim.post(
        f"/users/{USERS[0]}/sendMail",
        content=b"not base64!!",
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 400
    assert {k: r.json()["error"][k] for k in ("code", "message")} == expected["error"]
    mime = base64.b64encode(b"From: a@b\r\nTo: c@d\r\nSubject: hi\r\n\r\nbody")
    r = await sim.post(
        f"/users/{USERS[0]}/sendMail", content=mime, headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 202
    r = await sim.post(f"/users/{USERS[0]}/sendMail", json={"message": {"subject": "x"}})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ErrorInvalidRecipients"
    r = await sim.post("/users/nobody@x/sendMail", json={"message": {}})
    assert r.status_code == 404


async def test_default_processing_is_asynchronous_and_scales_with_group_size(sim: Harness) -> None:
    """Group-based licensing is asynchronous: changes "usually take effect within minutes"
    (https://learn.microsoft.com/en-us/entra/fundamentals/concept-group-based-licensing) and
    processing is slower for big groups and under load, with Start/Finish audit events
    (https://learn.microsoft.com/en-us/entra/identity/users/licensing-group-advanced). By
    default graphsim queues a change for a minute, then processes 50 users a simulated minute."""
    url = f"/groups/{G_SALES}?$select=id,licenseProcessingState"
    r = await sim.post(
        f"/groups/{G_SALES}/assignLicense",
        json={"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []},
    )
    assert r.status_code == 202
    assert (await sim.get(url)).json()["licenseProcessingState"]["state"] == "QueuedForProcessing"
    assert [len(await states(sim, u)) for u in USERS[:4]] == [1, 1, 1, 1]  # nothing yet
    sim.sim.advance(59)
    assert (await sim.get(url)).json()["licenseProcessingState"]["state"] == "QueuedForProcessing"
    sim.sim.advance(6)  # queued a minute, then 4 users at 50 a minute take ~5 s
    assert (await sim.get(url)).json()["licenseProcessingState"]["state"] == "ProcessingComplete"
    assert [len(await states(sim, u)) for u in USERS[:4]] == [2, 2, 2, 2]
    processor = sim.sim.state.processor
    now = sim.sim.state.clock.now()
    processor.schedule(now, None, [f"user-{i}" for i in range(1500)])
    assert processor.time_to_finish(now) == pytest.approx(60 + 30 * 60, abs=1)


async def test_group_licenses_only_on_security_enabled_groups(tenant: dict[str, object]) -> None:
    """Group-based licensing works with security groups and Microsoft 365 groups that have
    securityEnabled=true only
    (https://learn.microsoft.com/en-us/entra/fundamentals/concept-group-based-licensing);
    distribution lists and mail-only M365 groups are refused, and license nobody."""
    groups = tenant["groups"]
    assert isinstance(groups, list)
    dl = dict(groups[2], id=USERS[0][:-12] + "0000000000d1", displayName="DL")
    dl.update(mailEnabled=True, securityEnabled=False, groupTypes=[])
    m365 = dict(dl, id=USERS[0][:-12] + "0000000000d2", groupTypes=["Unified"])
    m365_secure = dict(m365, id=USERS[0][:-12] + "0000000000d3", securityEnabled=True)
    groups += [dl, m365, m365_secure]
    h = Harness(tenant)
    try:
        body = {"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []}
        for refused in (dl, m365):
            r = await h.post(f"/groups/{refused['id']}/assignLicense", json=body)
            assert r.status_code == 400
            assert "security" in r.json()["error"]["message"]
            got = (await h.get(f"/groups/{refused['id']}?$select=id,assignedLicenses")).json()
            assert got["assignedLicenses"] == []
        r = await h.post(f"/groups/{m365_secure['id']}/assignLicense", json=body)
        assert r.status_code == 202
        await h.settle()
        assert [s["skuId"] for s in await states(h, USERS[6])] == [EMS]
    finally:
        await h.close()


async def test_direct_assignment_needs_a_usage_location(sim: Harness) -> None:
    """Direct assignment to a user without usageLocation fails with Graph's message "License
    assignment cannot be done for user with invalid usage location." ("Before a license can be
    assigned to a user, the administrator has to specify the Usage location property on the
    user. For group license assignment, any users without a usage location specified inherit
    the location of the directory":
    https://learn.microsoft.com/en-us/entra/identity/users/licensing-admin-center)."""
    sim.sim.state.set_usage_location(USERS[6], None)
    body = {"addLicenses": [{"skuId": EMS, "disabledPlans": []}], "removeLicenses": []}
    r = await sim.post(f"/users/{USERS[6]}/assignLicense", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "License assignment cannot be done for user with invalid usage location."
    )
    assert await states(sim, USERS[6]) == []
    sim.sim.state.set_usage_location(USERS[6], "GB")
    assert (await sim.post(f"/users/{USERS[6]}/assignLicense", json=body)).status_code == 200


async def test_ids_in_the_path_are_found_in_upper_case_as_graph_finds_them(sim: Harness) -> None:
    """An admin pastes an object id from PowerShell output, upper-case: Graph finds the object
    and answers with its own (lower-case) id."""
    user, group = USERS[7].upper(), G_SALES.upper()

    read = await sim.get(f"/users/{user}?$select=id")
    added = await sim.post(f"/groups/{group}/members/$ref", json=ref(user))
    members = await sim.get(f"/groups/{group}/members?$select=id")
    removed = await sim.http.delete(f"/groups/{group}/members/{user}/$ref")
    reprocessed = await sim.post(f"/users/{user}/reprocessLicenseAssignment")

    assert (read.status_code, read.json()["id"]) == (200, USERS[7])
    assert added.status_code == 204
    assert USERS[7] in [m["id"] for m in members.json()["value"]]
    assert removed.status_code == 204
    assert (reprocessed.status_code, reprocessed.json()["id"]) == (200, USERS[7])
    assert (await sim.get(f"/groups/{group}?$select=id")).json()["id"] == G_SALES
