"""The function handlers, called as the host would, with fakes registered in the composition root.

Each function object comes from `function_app.app.get_functions()` (what the host indexes);
inputs are built from `azure.functions` types; `shared.bootstrap.use` registers an in-memory
`Services` (tests/service/world.py), so no handler is patched.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from shared.adapters.graph import GraphDirectory
from shared.bootstrap import WorkerServices, services, use
from shared.fakes.queues import InMemoryQueue
from shared.platform.settings import Settings
from shared.ports import messages
from shared.ports.directory import SubscriptionRequest
from shared.ports.queues import (
    GROUPS_CHANGED,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    SUBSCRIPTION_LIFECYCLE,
    SYNC_COMPLETED,
    poison_name,
)
from shared.service.intake.webhook_protocol import MAX_BODY_BYTES
from tests.demo_tenant import E3_BASE, E3_TEAMS, EMS, IRVIN
from tests.invocation import indexed_functions, invocation_context
from tests.service.test_reprocess_refused import Refusing
from tests.service.world import (
    TENANT_ID,
    World,
    body,
    build_world,
    lifecycle,
    notification,
    settings_for,
)

FUNCTIONS = indexed_functions()


def call(name: str, arg: object) -> Any:
    """Run the named function as the host does: every one is synchronous (see
    test_every_function_is_synchronous), so it is called directly, as from the host's pool."""
    user_function: Callable[..., Any] = FUNCTIONS[name].get_user_function()
    return user_function(arg, context=invocation_context(name))


def bindings(name: str) -> dict[str, Any]:
    [trigger, *_] = json.loads(FUNCTIONS[name].get_function_json())["bindings"]
    return trigger  # type: ignore[no-any-return]


def post(route: str, data: bytes, **params: str) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url=f"/api/{route}", params=params, body=data)


def queued(msg: messages.Message, dequeue_count: int = 1) -> QueueMessage:
    return QueueMessage(
        id="m-1", body=messages.encode_message(msg).encode(), dequeue_count=dequeue_count
    )


def timer() -> TimerRequest:
    return TimerRequest(past_due=False)


@pytest.fixture
def registered() -> Iterator[World]:
    world = build_world()
    use(world.svc)
    yield world
    use(None)


@pytest.fixture
def acting() -> Iterator[World]:
    world = build_world(LICENSE_GUARD_MODE="act")
    use(world.svc)
    yield world
    use(None)


# --------------------------------------------------------------------------- bindings


def test_every_function_is_synchronous() -> None:
    """The host runs sync functions in its thread pool and async ones on its one event loop;
    our jobs make blocking storage calls, so none may be async (each thread runs its job's
    Graph calls on a loop of its own: functions.running)."""
    for name, function in FUNCTIONS.items():
        user_function = function.get_user_function()
        assert not inspect.iscoroutinefunction(user_function), f"{name} is async"


def test_every_function_is_registered_once() -> None:
    assert sorted(FUNCTIONS) == sorted(
        [
            "graph_notifications",
            "graph_lifecycle",
            "group_changes",
            "recompute_users",
            "reprocess_user",
            "sync_completed",
            "sync_completed_http",
            "subscription_lifecycle",
            "subscription_keeper",
            "sync_watch",
            "recheck_errors",
            "poison_watch",
            "reconcile_nightly",
            "alert_digest",
            "tenant_alerts",
        ]
    )


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("graph_notifications", "graph/notifications"),
        ("graph_lifecycle", "graph/lifecycle"),
        ("sync_completed_http", "directory/sync-completed"),
    ],
)
def test_the_webhooks_are_post_routes_behind_a_function_key(name: str, route: str) -> None:
    trigger = bindings(name)

    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == route
    assert trigger["authLevel"] == "FUNCTION"
    assert trigger["methods"] == ["POST"]


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("group_changes", GROUPS_CHANGED),
        ("recompute_users", RECOMPUTE_USERS),
        ("reprocess_user", REPROCESS_USER),
        ("sync_completed", SYNC_COMPLETED),
        ("subscription_lifecycle", SUBSCRIPTION_LIFECYCLE),
    ],
)
def test_each_queue_worker_listens_on_its_queue(name: str, queue: str) -> None:
    trigger = bindings(name)

    assert trigger["type"] == "queueTrigger"
    assert trigger["queueName"] == queue
    assert trigger["connection"] == "AzureWebJobsStorage"


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("subscription_keeper", "SUBSCRIPTION_KEEPER_SCHEDULE"),
        ("sync_watch", "SYNC_WATCH_SCHEDULE"),
        ("recheck_errors", "RECHECK_ERRORS_SCHEDULE"),
        ("poison_watch", "POISON_WATCH_SCHEDULE"),
        ("reconcile_nightly", "RECONCILE_SCHEDULE"),
        ("alert_digest", "ALERT_DIGEST_SCHEDULE"),
        ("tenant_alerts", "POISON_WATCH_SCHEDULE"),
    ],
)
def test_each_timer_reads_its_schedule_from_settings_and_never_runs_on_startup(
    name: str, setting: str
) -> None:
    trigger = bindings(name)

    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == f"%{setting}%"
    assert trigger["runOnStartup"] is False
    assert setting in Settings.setting_names()  # a required setting, so never unresolved


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize("name", ["graph_notifications", "graph_lifecycle"])
def test_the_validation_handshake_echoes_the_token_even_without_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for setting in Settings.setting_names():
        monkeypatch.delenv(setting, raising=False)
    use(None)  # any attempt to build services would fail: no settings at all

    # The host hands over query values decoded once: echoed as they are, not decoded again.
    response = call(name, post("x", b"", validationToken="Validation: Testing %2B+"))

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_body() == b"Validation: Testing %2B+"


def test_a_genuine_notification_is_accepted_and_queued_once(registered: World) -> None:
    registered.subscribe()

    response = call(
        "graph_notifications",
        post("graph/notifications", body(notification(E3_BASE), notification(E3_TEAMS))),
    )

    assert response.status_code == 202
    assert len(registered.messages(GROUPS_CHANGED)) == 1
    assert registered.directory.request_count == 0


def test_a_forged_notification_is_acknowledged_but_not_queued(registered: World) -> None:
    registered.subscribe()
    forged = notification(E3_BASE, clientState="forged-client-state-00")

    response = call("graph_notifications", post("graph/notifications", body(forged)))

    assert response.status_code == 202  # never tell a forger what was wrong
    assert registered.messages(GROUPS_CHANGED) == []


@pytest.mark.parametrize("name", ["graph_notifications", "graph_lifecycle"])
def test_a_body_that_is_not_json_is_a_bad_request(registered: World, name: str) -> None:
    response = call(name, post("x", b"{not json"))

    assert response.status_code == 400
    assert registered.messages(GROUPS_CHANGED) == []


@pytest.mark.parametrize("name", ["graph_notifications", "graph_lifecycle"])
def test_a_body_over_one_megabyte_is_too_large(registered: World, name: str) -> None:
    response = call(name, post("x", b" " * (MAX_BODY_BYTES + 1)))

    assert response.status_code == 413


def lifecycle_worker(world: World) -> list[messages.LifecycleEvent]:
    """Run the `subscription_lifecycle` worker on each queued event, as the host would."""
    events = world.messages_of(SUBSCRIPTION_LIFECYCLE, messages.LifecycleEvent)
    for event in events:
        call("subscription_lifecycle", queued(event))
    return events


def test_a_lifecycle_event_is_answered_before_graph_is_called_then_acted_on(
    registered: World,
) -> None:
    """Graph: validate, answer 202 fast, act afterwards. A subscriptionRemoved created the new
    subscription before the answer (Graph calls our validation endpoint back meanwhile); slow
    answers get every subscription on the URL throttled, then dropped. The route only queues
    the event; the queue worker re-creates the subscription and queues the sweep."""
    sub = asyncio.run(_existing_subscription(registered))
    registered.subscribe(sub)
    registered.directory.requests.clear()

    response = call(
        "graph_lifecycle",
        post("graph/lifecycle", body(lifecycle("subscriptionRemoved", subscriptionId=sub))),
    )

    assert response.status_code == 202
    assert registered.directory.request_count == 0  # not one Graph call before the answer
    assert registered.messages(GROUPS_CHANGED) == []
    [event] = lifecycle_worker(registered)
    assert (event.subscription_id, event.event) == (sub, "subscriptionRemoved")
    assert [m.__class__ for m in registered.messages(GROUPS_CHANGED)] == [messages.DeltaSweep]
    assert registered.directory.requests["create_subscription"] == 1


def test_a_lifecycle_event_delivered_again_creates_no_second_subscription(
    registered: World,
) -> None:
    sub = asyncio.run(_existing_subscription(registered))
    registered.subscribe(sub)
    event = messages.LifecycleEvent(
        subscription_id=sub,
        event="subscriptionRemoved",
        correlation_id="c",
        received_at="2026-11-24T08:30:00Z",
    )

    call("subscription_lifecycle", queued(event))
    call("subscription_lifecycle", queued(event, dequeue_count=2))  # the host's redelivery

    assert registered.directory.requests["create_subscription"] == 2  # ours, then one new
    assert len(asyncio.run(registered.directory.subscriptions())) == 1


@pytest.mark.parametrize("route", ["notifications", "lifecycle"])
def test_change_and_lifecycle_notifications_posted_together_are_both_handled(
    registered: World, route: str
) -> None:
    """Graph lets one URL serve both kinds. At the change route the lifecycle events were
    dropped; at the lifecycle route the change notifications were (every group change then
    waited for a sweep). Either route queues the changes and the events."""
    sub = asyncio.run(_existing_subscription(registered))
    registered.subscribe(sub)
    items = (
        notification(E3_BASE, subscriptionId=sub),
        lifecycle("subscriptionRemoved", subscriptionId=sub),
    )

    response = call(f"graph_{route}", post(f"graph/{route}", body(*items)))

    assert response.status_code == 202
    assert len(lifecycle_worker(registered)) == 1
    changed = registered.messages(GROUPS_CHANGED)
    assert sorted(m.__class__.__name__ for m in changed) == ["DeltaSweep", "GroupsChanged"]
    assert [m.group_ids for m in changed if isinstance(m, messages.GroupsChanged)] == [(E3_BASE,)]
    assert registered.directory.requests["create_subscription"] == 2


GRAPHSIM_URL = "http://127.0.0.1:9/v1.0"  # never called: a static token needs a loopback URL


def graph_clients() -> int:
    """How many Graph clients (`GraphDirectory`) exist in the process."""
    gc.collect()
    return sum(isinstance(o, GraphDirectory) for o in gc.get_objects())


def test_a_change_notification_builds_no_graph_client() -> None:
    """The change route only vets and enqueues: a new worker thread answering it must not
    build its Graph client (kiota's HTTP stack, which nothing on that route uses)."""
    world = build_world()
    world.subscribe()
    worker = WorkerServices(
        settings_for(GRAPH_STATIC_TOKEN="graphsim-token", GRAPH_BASE_URL=GRAPHSIM_URL),
        world.svc.queues,
        world.svc.tables,
        world.svc.blobs,
        graph_credential=None,
        clock=world.clock.now,
    )
    counts: dict[str, int] = {}
    statuses: list[int] = []

    def fresh_worker_thread() -> None:
        counts["before"] = graph_clients()
        request = post("graph/notifications", body(notification(E3_BASE)))
        statuses.append(call("graph_notifications", request).status_code)
        counts["answered"] = graph_clients()
        assert isinstance(services().directory, GraphDirectory)  # a Graph job builds it
        counts["graph_job"] = graph_clients()

    use(worker)
    try:
        thread = threading.Thread(target=fresh_worker_thread)
        thread.start()
        thread.join(60)
    finally:
        use(None)

    assert statuses == [202]
    assert [m.__class__ for m in world.messages(GROUPS_CHANGED)] == [messages.GroupsChanged]
    assert counts["answered"] == counts["before"]
    assert counts["graph_job"] == counts["before"] + 1


def test_a_forged_lifecycle_event_at_the_notification_url_is_not_acted_on(
    registered: World,
) -> None:
    sub = asyncio.run(_existing_subscription(registered))
    registered.subscribe(sub)
    forged = lifecycle("subscriptionRemoved", subscriptionId=sub, clientState="forged-state-00")

    response = call("graph_notifications", post("graph/notifications", body(forged)))

    assert response.status_code == 202
    assert lifecycle_worker(registered) == []
    assert registered.messages(GROUPS_CHANGED) == []
    assert registered.directory.requests["create_subscription"] == 1
    assert registered.directory.requests["delete_subscription"] == 0


async def _existing_subscription(world: World) -> str:
    sub = await world.directory.create_subscription(
        SubscriptionRequest(
            resource="/groups",
            change_type="updated,deleted",
            notification_url=world.svc.settings.notification_url,
            lifecycle_notification_url=world.svc.settings.lifecycle_notification_url,
            client_state=world.svc.settings.client_state,
            expiration="2026-12-10T00:00:00Z",
        )
    )
    return sub.id


# --------------------------------------------------------------------------- queue workers


def test_group_changes_runs_a_sweep_into_recompute_messages(registered: World) -> None:
    call("group_changes", queued(messages.DeltaSweep(reason="test", correlation_id="c")))

    recompute = registered.messages(RECOMPUTE_USERS)
    assert recompute
    assert all(isinstance(m, messages.RecomputeUsers) for m in recompute)


def test_recompute_users_runs_into_a_reprocess_message_in_act_mode(acting: World) -> None:
    [ems] = [s for s in acting.directory.skus if s["skuId"] == EMS]
    ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + 1
    call("group_changes", queued(messages.DeltaSweep(reason="test", correlation_id="c")))
    acting.messages(RECOMPUTE_USERS)

    call(
        "recompute_users",
        queued(messages.RecomputeUsers(user_ids=(IRVIN,), reason="t", correlation_id="c")),
    )

    [msg] = acting.messages(REPROCESS_USER)
    assert isinstance(msg, messages.ReprocessUser)
    assert msg.user_id == IRVIN


def test_reprocess_user_calls_graph(acting: World) -> None:
    msg = messages.ReprocessUser(user_id=IRVIN, causes=(), reason="manual", correlation_id="c")

    call("reprocess_user", queued(msg))

    assert acting.directory.reprocessed == [IRVIN]


def test_reprocess_user_refused_by_graph_completes_the_message() -> None:
    """A 403 returns normally (the host deletes the message): no retries, nothing poisoned."""
    world = build_world(fake=Refusing, LICENSE_GUARD_MODE="act")
    use(world.svc)
    try:
        msg = messages.ReprocessUser(user_id=IRVIN, causes=(), reason="manual", correlation_id="c")
        call("reprocess_user", queued(msg, dequeue_count=1))
    finally:
        use(None)
    assert world.directory.refused == 1


def test_sync_completed_queues_a_sweep(registered: World) -> None:
    msg = messages.SyncCompleted(
        tenant_id=TENANT_ID,
        completed_at="2026-11-24T08:30:00Z",
        source="entra-connect",
        correlation_id="sync-run",
    )

    call("sync_completed", queued(msg))

    [sweep] = registered.messages(GROUPS_CHANGED)
    assert isinstance(sweep, messages.DeltaSweep)
    assert sweep.correlation_id == "sync-run"


def sync_post(data: bytes, content_type: str = "application/json") -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url="/api/directory/sync-completed",
        headers={"Content-Type": content_type},
        body=data,
    )


def sync_body(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "type": "SyncCompleted",
        "version": 1,
        "tenantId": TENANT_ID,
        "completedAt": "2026-11-24T08:30:00Z",
        "source": "entra-connect",
        "correlationId": "sync-run",
    }
    return json.dumps(fields | overrides).encode()


def test_the_sync_endpoint_queues_the_message_for_the_queue_trigger(registered: World) -> None:
    response = call("sync_completed_http", sync_post(sync_body()))

    assert response.status_code == 202
    assert json.loads(response.get_body()) == {"status": "accepted", "correlationId": "sync-run"}
    [queued_msg] = registered.messages(SYNC_COMPLETED)
    assert isinstance(queued_msg, messages.SyncCompleted)
    assert queued_msg.completed_at == "2026-11-24T08:30:00Z"
    assert registered.messages(GROUPS_CHANGED) == []  # the queue trigger does the rest

    call("sync_completed", queued(queued_msg))  # ... as the queue path always did

    [sweep] = registered.messages(GROUPS_CHANGED)
    assert isinstance(sweep, messages.DeltaSweep)
    assert sweep.correlation_id == "sync-run"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error", "says"),
    [
        (b"{not json", "application/json", 400, "invalid_message", "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "invalid_message", "must be a JSON object"),
        (sync_body(tenantId=42), "application/json", 400, "invalid_message", "tenantId"),
        (sync_body(completedAt="2026-11-24T08:30:00"), "application/json", 400,
         "invalid_message", "no time zone"),
        (sync_body(completedAt="2026-11-24T09:30:00+01:00"), "application/json", 400,
         "invalid_message", "must be in UTC"),
        (sync_body(source=""), "application/json", 400, "invalid_message", "source"),
        (sync_body(version=2), "application/json", 400, "invalid_message", "unsupported version"),
        (sync_body(type="DeltaSweep", reason="x"), "application/json", 400, "invalid_message",
         "expected SyncCompleted"),
        (sync_body(tenantId="0b0e8d11-9a3e-4a57-0c5a-9b2f0c1e6c1f"), "application/json", 422,
         "foreign_tenant", "not this deployment's tenant"),
        (sync_body(), "text/plain", 415, "unsupported_media_type", "application/json"),
        (sync_body(), "application/json; charset=latin-1", 415, "unsupported_media_type",
         "utf-8"),
        (sync_body(padding="x" * 20_000), "application/json", 413, "too_large", "at most"),
        (b"\xff\xfe", "application/json", 400, "invalid_message", "not UTF-8"),
    ],
)  # fmt: skip
def test_the_sync_endpoint_rejects_bad_input_with_a_json_error_and_queues_nothing(
    registered: World, data: bytes, content_type: str, status: int, error: str, says: str
) -> None:
    response = call("sync_completed_http", sync_post(data, content_type))

    assert response.status_code == status
    assert response.mimetype == "application/json"
    answer = json.loads(response.get_body())
    assert answer["error"] == error
    assert says in answer["message"]
    assert registered.messages(SYNC_COMPLETED) == []


def test_the_sync_endpoint_accepts_a_utf8_charset_and_upper_case_ids(registered: World) -> None:
    data = sync_body(tenantId=TENANT_ID.upper())

    response = call("sync_completed_http", sync_post(data, "Application/JSON; charset=UTF-8"))

    assert response.status_code == 202
    [queued_msg] = registered.messages(SYNC_COMPLETED)
    assert isinstance(queued_msg, messages.SyncCompleted)
    assert queued_msg.tenant_id == TENANT_ID.lower()


class UnreachableQueue(InMemoryQueue):
    """The storage port when the account cannot be reached."""

    def send(self, msg: messages.Message, *, visibility_timeout: int | None = None) -> None:
        raise ServiceRequestError("connection refused")


def test_the_sync_endpoint_answers_503_when_the_queue_is_unreachable(registered: World) -> None:
    queues = registered.svc.queues
    registered.svc.queues = replace(queues, sync_completed=UnreachableQueue(SYNC_COMPLETED))

    response = call("sync_completed_http", sync_post(sync_body()))

    assert response.status_code == 503
    assert json.loads(response.get_body())["error"] == "unavailable"


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        (
            "group_changes",
            messages.RecomputeUsers(user_ids=(IRVIN,), reason="t", correlation_id="c"),
        ),
        ("recompute_users", messages.DeltaSweep(reason="t", correlation_id="c")),
        ("reprocess_user", messages.DeltaSweep(reason="t", correlation_id="c")),
        ("sync_completed", messages.DeltaSweep(reason="t", correlation_id="c")),
    ],
)
def test_a_message_of_the_wrong_type_raises_so_the_host_poisons_it(
    registered: World, name: str, wrong: messages.Message
) -> None:
    with pytest.raises(messages.MessageError, match="expected"):
        call(name, queued(wrong))

    assert registered.directory.request_count == 0


@pytest.mark.parametrize(
    "name", ["group_changes", "recompute_users", "reprocess_user", "sync_completed"]
)
def test_a_malformed_message_raises_so_the_host_poisons_it(registered: World, name: str) -> None:
    with pytest.raises(messages.MessageError):
        call(name, QueueMessage(id="m-1", body=b'{"type": "DeltaSweep"}', dequeue_count=5))


# --------------------------------------------------------------------------- timers


def test_the_subscription_keeper_creates_the_missing_subscription(registered: World) -> None:
    call("subscription_keeper", timer())

    assert registered.directory.requests["create_subscription"] == 1
    assert [m.__class__ for m in registered.messages(GROUPS_CHANGED)] == [messages.DeltaSweep]


def test_the_sync_watch_polls_the_last_sync_time(registered: World) -> None:
    call("sync_watch", timer())

    assert registered.directory.requests["organization"] == 1
    assert len(registered.messages(GROUPS_CHANGED)) == 1


def test_the_errors_recheck_queues_recomputes(registered: World) -> None:
    call("recheck_errors", timer())

    assert registered.directory.requests["groups_with_license_errors"] == 1
    assert registered.messages(RECOMPUTE_USERS)


def test_the_poison_watch_reports_a_poisoned_message(registered: World) -> None:
    call("subscription_keeper", timer())  # a subscription Graph has: the dead-man stays quiet
    registered.queue(poison_name(REPROCESS_USER)).put_raw("garbage")  # type: ignore[attr-defined]

    call("poison_watch", timer())

    codes = [e.fields["code"] for e in registered.svc.tables.findings.query_all()]
    assert codes == ["PoisonedMessage"]


@pytest.mark.parametrize("name", ["alert_digest", "tenant_alerts"])
def test_each_alert_timer_runs_its_job(registered: World, name: str) -> None:
    """Alert mail is off here (no ALERT_SENDER): the job's first check says so, once."""
    assert not registered.svc.caches.alerts_disabled_logged

    call(name, timer())

    assert registered.svc.caches.alerts_disabled_logged


def test_the_poison_watch_reports_a_recorded_subscription_graph_no_longer_has(
    registered: World,
) -> None:
    registered.subscribe()  # in our table only

    call("poison_watch", timer())

    [finding] = list(registered.svc.tables.findings.query_all())
    assert finding.fields["code"] == "SubscriptionMissing"
    assert "no longer exists in Graph" in str(finding.fields["message"])
