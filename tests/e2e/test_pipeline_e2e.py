"""End to end: graphsim → webhook → queues → Graph → findings and reprocess calls, for real.

Each test runs the real `function_app.app` on the DevHost (loopback HTTP, queue pollers on
Azurite, timers fired on demand) against graphsim serving the Contoso tenant
(`graphsim/tenants/contoso.json`) in a thread. Queue and table names are fixed contracts, so
the session's Azurite is wiped before each test rather than given new names.

What is asserted comes from outside the service where possible: graphsim's request counters
and notification deliveries, the users' license states in graphsim, the DevHost's invocation
log, and the findings table.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from devhost.azurite import AzuriteEndpoints, wipe_storage
from graphsim.client import SimClient
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS, poison_name
from tests.demo_tenant import ALANNAH, E3_BASE, E3_TEAMS, EMS, ENTERPRISEPACK, GRADY, LYNNE
from tests.e2e.harness import (
    CLIENT_STATE,
    GRAPH_TOKEN,
    EventCapture,
    Stack,
    captured_service_logs,
    load_tenant,
    open_findings,
    running_stack,
    settle,
)
from tests.leftover_threads import no_leftover_threads  # noqa: F401 - autouse fixture
from tests.service.world import notification

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REPROCESS = "POST /users/{id}/reprocessLicenseAssignment"
ASSIGN = "POST /users/{id}/assignLicense"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def capture() -> Iterator[EventCapture]:
    with captured_service_logs() as events:
        yield events


StackFactory = Callable[..., tuple[Stack, SimClient]]


@pytest.fixture
def make_stack(azurite: AzuriteEndpoints, capture: EventCapture) -> Iterator[StackFactory]:
    """Start graphsim (Contoso) and the DevHost on the wiped session Azurite; kwargs go to
    `running_stack` (mode, host_json, extra_settings). A new stack stops the hosts of the
    earlier ones first (their graphsim stays up to be read): all share this Azurite and the
    process-wide `Services`, so an earlier host still running would take the new stack's queue
    messages and use its loop-bound Graph client from the wrong event loop."""
    with contextlib.ExitStack() as exits:
        made: list[Stack] = []

        def make(**kwargs: Any) -> tuple[Stack, SimClient]:
            for earlier in made:
                earlier.host.stop()
            wipe_storage(azurite.connection_string)
            stack = exits.enter_context(
                running_stack(load_tenant(), storage=azurite.connection_string, **kwargs)
            )
            made.append(stack)
            sim = exits.enter_context(SimClient(stack.graph_url))
            return stack, sim

        yield make


def fast_retries(visibility: str = "00:00:00.200") -> dict[str, Any]:
    """host.json with failed messages visible again quickly, so retries do not take 30 s."""
    document = json.loads((ROOT / "host.json").read_text())
    document["extensions"]["queues"]["visibilityTimeout"] = visibility
    return dict(document)


# --------------------------------------------------------------------------- helpers


def subscribe(stack: Stack, sim: SimClient) -> None:
    """The keeper creates the subscription (graphsim validates the webhook over HTTP); the
    DeltaSweep it queues learns the licensed groups and evaluates every member."""
    run = stack.host.fire_timer("subscription_keeper")
    assert run.outcome == "succeeded", run.error
    settle(stack.host, sim)
    assert [d["outcome"] for d in sim.deliveries()] == ["validated", "validated"]


def graph_get(stack: Stack, path: str) -> dict[str, Any]:
    """A GET as the test's own observer: retried through graphsim's injected faults."""
    for _ in range(20):
        resp = httpx.get(
            stack.graph_url + path, headers={"Authorization": f"Bearer {GRAPH_TOKEN}"}, timeout=10
        )
        if resp.status_code not in (429, 503):
            break
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def license_states(stack: Stack, user_id: str, sku_id: str) -> list[tuple[str, str | None]]:
    user = graph_get(stack, f"/users/{user_id}?$select=id,licenseAssignmentStates")
    return sorted(
        (s["state"], s.get("error"))
        for s in user.get("licenseAssignmentStates") or []
        if s["skuId"] == sku_id
    )


def requests(sim: SimClient, key: str, *, ok_only: bool = False) -> int:
    by_status = sim.counters().get(key, {})
    return sum(n for status, n in by_status.items() if not ok_only or status.startswith("2"))


def codes_of(stack: Stack, user_id: str) -> set[str]:
    return {
        str(f["code"])
        for key, f in open_findings(stack.storage).items()
        if key.startswith(user_id + "|")
    }


def fill_e3(stack: Stack, sim: SimClient) -> None:
    """Office 365 E3 with no free seat left."""
    skus = graph_get(stack, "/subscribedSkus")["value"]
    sku = next(s for s in skus if s["skuId"] == ENTERPRISEPACK)
    sim.set_prepaid_units(ENTERPRISEPACK, enabled=int(sku["consumedUnits"]))


def seat_moves_in_one_sync(sim: SimClient) -> None:
    """One Entra Connect cycle: Lynne joins the Base group (E3 is full, so Entra leaves her in
    CountViolation), then Alannah leaves it (a seat is free now, but Entra does not retry)."""
    sim.queue_onprem_change("add", E3_BASE, LYNNE)
    sim.queue_onprem_change("remove", E3_BASE, ALANNAH)
    result = sim.sync_cycle()
    assert result["applied"] == 2


def host_calls(stack: Stack, function: str, since: int = 0) -> int:
    """Runs of `function` in the DevHost's invocation log from entry `since` on."""
    return sum(1 for i in stack.host.invocations[since:] if i.function == function)


# --------------------------------------------------------------------------- tests


def test_a_membership_change_flows_from_the_webhook_to_a_reprocess_call(
    make_stack: StackFactory, capture: EventCapture
) -> None:
    stack, sim = make_stack(mode="act")
    subscribe(stack, sim)
    fill_e3(stack, sim)
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == []
    sim.clear_counters()
    mark = len(stack.host.invocations)
    capture.clear()

    seat_moves_in_one_sync(sim)
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == []  # Entra has queued the group, no more
    assert graph_get(stack, f"/groups/{E3_BASE}?$select=id,licenseProcessingState")[
        "licenseProcessingState"
    ] == {"state": "QueuedForProcessing"}
    settle(stack.host, sim, recheck=False)  # the service sees the group queued and waits
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == [("Error", "CountViolation")]
    assert "PendingGroupAssignment" in codes_of(stack, LYNNE)
    assert requests(sim, REPROCESS) == 0
    assert stack.host.fire_timer("recheck_errors").outcome == "succeeded"
    settle(stack.host, sim)

    delivered = [d for d in sim.deliveries() if d["outcome"] == "delivered"]
    assert delivered
    assert all(d["status"] == 202 for d in delivered)
    assert {i.outcome for i in stack.host.invocations} == {"succeeded"}
    assert host_calls(stack, "graph_notifications", mark) >= 1
    assert host_calls(stack, "group_changes", mark) >= 1
    assert host_calls(stack, "recompute_users", mark) >= 1
    assert host_calls(stack, "reprocess_user", mark) == 1
    assert requests(sim, REPROCESS) == 1
    assert requests(sim, ASSIGN) == 0
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == [("Active", None)]
    called = capture.named("reprocess.called")
    assert [e["user_id"] for e in called] == [LYNNE]
    # The notification's recompute saw the group still queued and left Lynne pending; the
    # recheck (one correlation id from timer to Graph call) reprocessed her.
    accepted = {e["correlation_id"] for e in capture.named("notification.accepted")}
    recomputed = {e["correlation_id"] for e in capture.named("users.recomputed")}
    assert accepted & recomputed
    rechecked = {e["correlation_id"] for e in capture.named("errors.rechecked")}
    assert called[0]["correlation_id"] in rechecked


def test_a_uniqueness_violation_is_recorded_not_reprocessed(
    make_stack: StackFactory, capture: EventCapture
) -> None:
    stack, sim = make_stack(mode="act")
    subscribe(stack, sim)
    sim.set_duplicate_proxy(LYNNE)
    sim.clear_counters()
    mark = len(stack.host.invocations)

    sim.queue_onprem_change("add", E3_BASE, LYNNE)
    sim.sync_cycle()
    settle(stack.host, sim)

    assert license_states(stack, LYNNE, ENTERPRISEPACK) == [("Error", "UniquenessViolation")]
    assert "UniquenessViolation" in codes_of(stack, LYNNE)
    assert host_calls(stack, "recompute_users", mark) >= 1
    assert requests(sim, REPROCESS) == 0
    assert host_calls(stack, "reprocess_user", mark) == 0


def test_a_stack_does_not_start_while_another_stacks_host_runs(
    make_stack: StackFactory, azurite: AzuriteEndpoints
) -> None:
    """One function app per process: a second host would take the first one's queue messages
    and use its Services (loop-bound Graph client) from another event loop."""
    stack, _ = make_stack(mode="observe")

    with (
        pytest.raises(RuntimeError, match="still running"),
        running_stack(load_tenant(), storage=azurite.connection_string),
    ):
        pass

    assert stack.host.running
    assert stack.host.fire_timer("subscription_keeper").outcome == "succeeded"


def test_observe_mode_writes_nothing(make_stack: StackFactory, capture: EventCapture) -> None:
    stack, sim = make_stack(mode="observe")
    _play_scenario(stack, sim)  # its first sweep alone finds users act mode would reprocess

    would = {e["user_id"] for e in capture.named("reprocess.would_queue")}
    assert LYNNE in would
    assert len(would) >= 3
    assert requests(sim, REPROCESS) == 0
    assert requests(sim, ASSIGN) == 0
    writes = {k for k in sim.counters() if not k.startswith(("GET ", "POST /$batch"))}
    assert writes == {"POST /subscriptions"}
    assert host_calls(stack, "reprocess_user") == 0
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == [("Error", "CountViolation")]
    assert "CountViolation" in codes_of(stack, LYNNE)


def _replay(stack: Stack, sim: SimClient, group_id: str) -> dict[str, Any]:
    """A change notification as graphsim sends it (for a replay straight to the webhook)."""
    subscription = graph_get(stack, "/subscriptions")["value"][0]
    item = notification(
        group_id,
        subscriptionId=subscription["id"],
        clientState=CLIENT_STATE,
        subscriptionExpirationDateTime=subscription["expirationDateTime"],
        tenantId=stack.settings["TENANT_ID"],
    )
    return {"value": [item]}


async def _post_together(url: str, body: dict[str, Any], times: int) -> list[int]:
    async with httpx.AsyncClient(timeout=10) as client:
        responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(times)))
    return [r.status_code for r in responses]


def test_duplicate_notifications_reprocess_once_per_user_and_cause(
    make_stack: StackFactory, capture: EventCapture
) -> None:
    stack, sim = make_stack(mode="act")
    subscribe(stack, sim)
    fill_e3(stack, sim)
    sim.set_notifications(duplicateRate=1.0)
    sim.clear_counters()
    mark = len(stack.host.invocations)
    capture.clear()

    seat_moves_in_one_sync(sim)
    # ...and the same notification three more times at once, as a retrying Graph might
    url = stack.host.url_for("graph_notifications")
    assert asyncio.run(_post_together(url, _replay(stack, sim, E3_BASE), 3)) == [202] * 3
    settle(stack.host, sim)

    assert any(d["outcome"] == "duplicated" for d in sim.deliveries())
    assert len(capture.named("notification.accepted")) >= 4
    assert host_calls(stack, "group_changes", mark) >= 4
    assert requests(sim, REPROCESS) == 1
    assert [e["user_id"] for e in capture.named("reprocess.called")] == [LYNNE]
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == [("Active", None)]
    assert {i.outcome for i in stack.host.invocations} == {"succeeded"}


def _queue_count(storage: str, name: str) -> int:
    client = QueueClient.from_connection_string(storage, name)
    try:
        return int(client.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


def test_a_forged_notification_is_answered_202_and_dropped(
    make_stack: StackFactory, capture: EventCapture
) -> None:
    stack, sim = make_stack(mode="act")
    subscribe(stack, sim)
    before = len(stack.host.invocations)
    forged = _replay(stack, sim, E3_BASE)
    forged["value"][0]["clientState"] = "not-the-client-state-we-gave"

    resp = httpx.post(stack.host.url_for("graph_notifications"), json=forged, timeout=10)
    assert resp.status_code == 202
    assert _queue_count(stack.storage, GROUPS_CHANGED) == 0
    stack.host.wait_idle(timeout=10, settle=0.5)

    after = stack.host.invocations[before:]
    assert [(i.function, i.status_code) for i in after] == [("graph_notifications", 202)]
    rejected = capture.named("security.notification_rejected")
    assert len(rejected) == 1
    assert "clientState" in rejected[0]["reason"]
    assert not capture.named("notification.accepted")
    # and without the function key the host itself refuses it
    bare = stack.host.url_for("graph_notifications").split("?")[0]
    assert httpx.post(bare, json=forged, timeout=10).status_code == 401


def _play_scenario(stack: Stack, sim: SimClient) -> None:
    subscribe(stack, sim)
    fill_e3(stack, sim)
    seat_moves_in_one_sync(sim)
    settle(stack.host, sim)
    sim.set_prepaid_units(EMS, enabled=10)
    assert stack.host.fire_timer("recheck_errors").outcome == "succeeded"
    settle(stack.host, sim)


def _outcome(stack: Stack, sim: SimClient) -> dict[str, Any]:
    return {
        "findings": sorted(open_findings(stack.storage)),
        "reprocessed": requests(sim, REPROCESS, ok_only=True),
        "lynne": license_states(stack, LYNNE, ENTERPRISEPACK),
        "ems": [license_states(stack, u["id"], EMS) for u in stack.tenant["users"]],
    }


def test_throttling_and_503s_at_10_percent_change_nothing(make_stack: StackFactory) -> None:
    calm_stack, calm_sim = make_stack(mode="act", host_json=fast_retries())
    _play_scenario(calm_stack, calm_sim)
    calm = _outcome(calm_stack, calm_sim)
    calm_stack.host.stop()

    stack, sim = make_stack(mode="act", host_json=fast_retries())
    sim.set_faults(rate429=0.05, rate503=0.05, retryAfter=1, seed=7)
    _play_scenario(stack, sim)
    sim.set_faults(rate429=0.0, rate503=0.0)
    stormy = _outcome(stack, sim)

    faults: Counter[str] = Counter()
    for by_status in sim.counters().values():
        faults.update({s: n for s, n in by_status.items() if s in ("429", "503")})
    assert faults["429"] > 0, f"no 429 was injected: {faults}"
    assert faults["503"] > 0, f"no 503 was injected: {faults}"
    assert stormy == calm
    assert calm["reprocessed"] >= 3  # Lynne, and the EMS users once seats were bought
    assert calm["lynne"] == [("Active", None)]


def test_a_message_that_keeps_failing_ends_in_poison_and_becomes_a_finding(
    make_stack: StackFactory, azurite: AzuriteEndpoints
) -> None:
    stack, _ = make_stack(mode="act", host_json=fast_retries("00:00:00"))
    malformed = base64.b64encode(b'{"type": "RecomputeUsers", "userIds": ').decode()
    queue = QueueClient.from_connection_string(azurite.connection_string, RECOMPUTE_USERS)
    with contextlib.suppress(Exception):
        queue.create_queue()
    queue.send_message(malformed)
    deadline = time.monotonic() + 30
    while not [i for i in stack.host.invocations_of("recompute_users") if i.poisoned]:
        assert time.monotonic() < deadline, "the message never reached the poison queue"
        time.sleep(0.05)
    stack.host.wait_idle(timeout=10)

    tries = stack.host.invocations_of("recompute_users")
    assert [i.dequeue_count for i in tries] == [1, 2, 3, 4, 5]
    assert all(i.outcome == "failed" for i in tries)
    poison = QueueClient.from_connection_string(
        azurite.connection_string,
        poison_name(RECOMPUTE_USERS),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    assert [m.content for m in poison.peek_messages(max_messages=32)] == [
        base64.b64decode(malformed).decode()
    ]

    assert stack.host.fire_timer("poison_watch").outcome == "succeeded"
    poisoned = [f for f in open_findings(stack.storage).values() if f["code"] == "PoisonedMessage"]
    assert len(poisoned) == 1
    assert RECOMPUTE_USERS in poisoned[0]["message"]
    assert poisoned[0]["severity"] == "error"
    assert stack.host.fire_timer("poison_watch").outcome == "succeeded"  # seen once, kept once
    again = [f for f in open_findings(stack.storage).values() if f["code"] == "PoisonedMessage"]
    assert len(again) == 1


@pytest.mark.parametrize("token_fate", ["expired", "reset"])
def test_an_expired_delta_token_means_a_full_resync_that_still_finds_leavers(
    make_stack: StackFactory, capture: EventCapture, token_fate: str
) -> None:
    """Expired (400 syncStateNotFound) and reset (410 Gone with an empty-token Location) both
    lead to one full round (https://learn.microsoft.com/en-us/graph/delta-query-overview)."""
    stack, sim = make_stack(mode="act")
    subscribe(stack, sim)
    assert "Other" in codes_of(stack, GRADY)  # "Others": his E3 from the Teams group failed

    sim.set_notifications(dropRate=1.0)  # the leaver's notification is lost...
    sim.queue_onprem_change("remove", E3_TEAMS, GRADY)
    sim.sync_cycle()
    sim.drain(settle=True)
    sim.set_notifications(dropRate=0.0)
    if token_fate == "expired":
        sim.advance_clock(days=8)  # ...and the stored delta token is past its 7 days
    else:
        sim.reset_delta_sync()  # ...and Graph resets the sync state
    assert stack.host.fire_timer("sync_watch").outcome == "succeeded"
    settle(stack.host, sim)

    resyncs = capture.named("delta.resync")
    assert [e["partition"] for e in resyncs] == [0]
    assert resyncs[0]["code"] == (
        "syncStateNotFound" if token_fate == "expired" else "resyncRequired"
    )
    changed = capture.named("groups.changed")[-1]
    assert changed["resynced"] == [0]
    assert changed["left"] == 1
    assert requests(sim, "GET /groups/delta") >= 3  # first round, expired token, full read
    assert "Other" not in codes_of(stack, GRADY)
    assert license_states(stack, GRADY, ENTERPRISEPACK) == []
    assert {i.outcome for i in stack.host.invocations} == {"succeeded"}
