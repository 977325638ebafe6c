"""The change-notification webhook under hostile or huge input: never a 500, nothing lost.

Calls `graph_notifications` as the Functions worker does (the registered user function with an
`azure.functions.HttpRequest`), over in-memory queues and tables (tests.service.world).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import orjson
import pytest

import function_app
from devhost.index import app_functions
from shared.bootstrap import use
from shared.platform.logging import configure_logging
from shared.ports.messages import MAX_ENCODED_BYTES, GroupsChanged
from shared.ports.queues import GROUPS_CHANGED, MessageQueue
from shared.service.intake.notifications import MAX_REJECTION_SAMPLES
from shared.service.intake.webhook_protocol import MAX_BODY_BYTES
from shared.service.stores import ServiceState
from shared.service.subscriptions import KEEPER_LEASE, LIFECYCLE_RETRY_SECONDS
from tests.invocation import invocation_context
from tests.service.world import World, body, build_world, lifecycle, notification

Handler = Callable[[func.HttpRequest], func.HttpResponse]
FUNCTIONS = {f.get_function_name(): f for f in app_functions(function_app.app)}
"""Through devhost's app_functions: the app's get_functions() may be called once a process."""


def HANDLER(request: func.HttpRequest) -> func.HttpResponse:  # noqa: N802 - reads as a constant
    """graph_notifications called as the host calls it: with its invocation context."""
    user_function = FUNCTIONS["graph_notifications"].get_user_function()
    response: func.HttpResponse = user_function(
        request, context=invocation_context("graph_notifications")
    )
    return response


GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def world() -> Iterator[World]:
    world = build_world()
    world.subscribe()
    use(world.svc)
    yield world
    use(None)


def post(data: bytes, **params: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method="POST", url="/api/graph/notifications", params=params, body=data
    )
    return HANDLER(request)


def raw_messages(queue: MessageQueue) -> list[str]:
    texts: list[str] = []
    while batch := queue.receive(32):
        for received in batch:
            texts.append(received.text)
            queue.delete(received)
    return texts


def group_ids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"intake/{i}")) for i in range(n)]


@pytest.mark.parametrize("count", [1_257, 4_700])
def test_a_genuine_batch_of_thousands_of_groups_is_split_under_the_queue_limit(
    world: World, count: int
) -> None:
    """1,257 GUIDs in one GroupsChanged encoded to 78 KB: over 48 KiB, so the batch failed.
    (Items without resourceData, compact: 4,700 fit in the 1 MB a request may carry.)"""
    ids = group_ids(count)
    items = []
    for g in ids:
        item = notification(g)
        del item["resourceData"], item["subscriptionExpirationDateTime"], item["changeType"]
        items.append(item)
    data = orjson.dumps({"value": items})
    assert len(data) <= MAX_BODY_BYTES

    response = post(data)

    assert response.status_code == 202
    texts = raw_messages(world.queue(GROUPS_CHANGED))
    assert len(texts) >= 2
    assert all(len(t.encode()) <= MAX_ENCODED_BYTES for t in texts)
    enqueued = [g for t in texts for g in orjson.loads(t)["groupIds"]]
    assert sorted(enqueued) == sorted(ids)  # every id once, none lost, none doubled
    correlation = {orjson.loads(t)["correlationId"] for t in texts}
    assert len(correlation) == 1


def test_batches_split_any_number_of_groups_without_duplicates() -> None:
    ids = group_ids(2_500)

    batches = GroupsChanged.batches(
        ids + ids[:10], correlation_id="c", received_at="2026-12-01T00:00:00Z"
    )

    assert [len(b.group_ids) for b in batches] == [1_000, 1_000, 500]
    assert [g for b in batches for g in b.group_ids] == ids


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " "])
@pytest.mark.parametrize("where", ["resourceData", "resource", "subscriptionId", "tenantId"])
def test_a_guid_followed_by_a_newline_is_rejected_not_a_500(
    world: World, suffix: str, where: str
) -> None:
    item = notification(GUID)
    if where == "resourceData":
        item["resourceData"] = {"@odata.type": "#Microsoft.Graph.Group", "id": GUID + suffix}
        item["resource"] = f"Groups/{GUID}{suffix}"
    elif where == "resource":
        del item["resourceData"]
        item["resource"] = f"Groups/{GUID}{suffix}"
    else:
        item[where] = str(item[where]) + suffix

    response = post(body(item))

    assert response.status_code == 202  # acknowledged, never told what was wrong
    assert world.messages(GROUPS_CHANGED) == []


def forged_megabyte() -> tuple[bytes, int]:
    """Close to 1 MB of items with a wrong clientState, as in the report (49,949 items)."""
    item = {"clientState": "x"}  # 20 bytes a piece: about 50,000 items
    one = len(orjson.dumps(item)) + 1
    n = (MAX_BODY_BYTES - 20) // one
    data = orjson.dumps({"value": [item] * n})
    assert len(data) <= MAX_BODY_BYTES
    return data, n


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """The service's log events as the app emits them in production (structlog through
    `logging`, fields as record attributes): capture_logs cannot see loggers structlog cached
    after another test configured logging, the records always can."""
    caplog.set_level(logging.INFO)
    configure_logging([caplog.handler])

    def read() -> list[dict[str, Any]]:
        return [
            {k: v for k, v in vars(r).items() if not k.startswith("_")}
            for r in caplog.records
            if isinstance(getattr(r, "event", None), str)
        ]

    return read


def test_a_megabyte_of_forged_items_is_answered_with_one_summary_line(
    world: World, events: Callable[[], list[dict[str, Any]]]
) -> None:
    """One summary line, not one per item (the figure for its speed is bench/reliability_fuzz)."""
    data, n = forged_megabyte()
    assert n > 40_000

    response = post(data)
    logs = events()

    assert response.status_code == 202
    assert world.messages(GROUPS_CHANGED) == []
    rejected = [e for e in logs if e["event"] == "security.notification_rejected"]
    assert len(rejected) == 1
    assert len(logs) <= 2
    [summary] = rejected
    assert summary["rejected"] == n
    assert summary["reasons"] == {"clientState does not match": n}
    assert len(summary["samples"]) == MAX_REJECTION_SAMPLES


def test_the_summary_counts_each_reason(
    world: World, events: Callable[[], list[dict[str, Any]]]
) -> None:
    items = [
        notification(GUID),
        notification(GUID, clientState="wrong-client-state"),
        notification(GUID, clientState="wrong-client-state"),
        notification(GUID, tenantId=str(uuid.uuid4())),
    ]
    response = post(body(*items))
    logs = events()

    assert response.status_code == 202
    [summary] = [e for e in logs if e["event"] == "security.notification_rejected"]
    assert summary["reasons"] == {
        "clientState does not match": 2,
        "tenantId is not our tenant": 1,
    }
    assert summary["reason"] == "clientState does not match"
    assert len(world.messages(GROUPS_CHANGED)) == 1


@pytest.mark.parametrize(
    "token", ["a%2Bb", "a+b c", "Validation: Testing client %2B+ app", "%25 %"]
)
def test_the_validation_token_is_echoed_exactly_as_decoded_by_the_host(
    world: World, token: str
) -> None:
    """Graph checks the body equals the decoded token: https://learn.microsoft.com/graph/
    change-notifications-delivery-webhooks (notification endpoint validation)."""
    response = post(b"", validationToken=token)

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_body() == token.encode()


def post_lifecycle(event: str, subscription_id: str) -> func.HttpResponse:
    """Graph's lifecycle notification `event` for `subscription_id`, on the lifecycle route."""
    request = func.HttpRequest(
        method="POST",
        url="/api/graph/lifecycle",
        params={},
        body=body(lifecycle(event, subscriptionId=subscription_id)),
    )
    handler = FUNCTIONS["graph_lifecycle"].get_user_function()
    return handler(request, context=invocation_context("graph_lifecycle"))  # type: ignore[no-any-return]


def test_reauthorization_for_a_subscription_gone_from_graph_is_accepted_not_a_500(
    world: World,
) -> None:
    """Our table still names it, Graph answers 404 to reauthorize: a new one is created."""
    gone = world.subscribe("0d9f3c1e-0c5a-4a57-9a3e-6c1f0b0e8d22")

    response = post_lifecycle("reauthorizationRequired", gone)

    assert response.status_code == 202
    assert asyncio.run(world.run_lifecycle()) != []  # the queue worker acts on it
    subscriptions = asyncio.run(world.directory.subscriptions())
    assert len(subscriptions) == 1
    assert subscriptions[0].id != gone


def test_a_lifecycle_event_meeting_the_keepers_lease_is_answered_202_and_waits_on_its_queue(
    world: World,
) -> None:
    """While another run holds the subscription keeper's lease, a subscriptionRemoved cannot be
    acted on. The route answers 202 at once all the same (it only queues the event); the queue
    worker sends the event again for after `LIFECYCLE_RETRY_SECONDS`, then acts on it."""
    removed = world.subscribe("5b2f0c1e-3c5a-4a57-9a3e-6c1f0b0e8d22")
    ServiceState(world.svc.tables.servicestate).put(KEEPER_LEASE, {"at": world.clock.now()})

    response = post_lifecycle("subscriptionRemoved", removed)

    assert response.status_code == 202
    assert asyncio.run(world.run_lifecycle()) == ["deferred"]
    world.svc.tables.servicestate.delete(ServiceState.META_PK, KEEPER_LEASE)  # that run ends
    assert asyncio.run(world.run_lifecycle()) == []  # waits its time
    world.clock.advance(LIFECYCLE_RETRY_SECONDS)
    [outcome] = asyncio.run(world.run_lifecycle())
    assert outcome.startswith("created ")
