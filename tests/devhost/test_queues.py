"""Queue triggers through the devhost against Azurite: encoding, outputs, retries, poison."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devhost.azurite import AzuriteEndpoints
from devhost.host import DevHost
from tests.devhost import sample_app
from tests.devhost.conftest import HOST_JSON, HostFactory, decoded_contents, raw_contents, sender


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_queue_message_runs_and_writes_base64_output(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = make_host()
    sender(azurite, queues["SAMPLE_IN_QUEUE"]).send_message("hello queue")
    host.wait_idle(timeout=15)

    out = queues["SAMPLE_OUT_QUEUE"]
    assert sorted(raw_contents(azurite, out)) == sorted(
        [b64("HELLO QUEUE"), b64("dequeue_count=1")]
    )
    assert sorted(decoded_contents(azurite, out)) == ["HELLO QUEUE", "dequeue_count=1"]
    (record,) = host.invocations_of("shout")
    assert (record.trigger, record.outcome, record.dequeue_count) == ("queue", "succeeded", 1)
    # success deletes the trigger message
    assert raw_contents(azurite, queues["SAMPLE_IN_QUEUE"]) == []


def test_many_messages_are_all_processed(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = make_host(host_json={"extensions": {"queues": {"batchSize": 4}}})
    client = sender(azurite, queues["SAMPLE_IN_QUEUE"])
    for i in range(12):
        client.send_message(f"m{i}")
    host.wait_idle(timeout=20)
    assert host.counters["shout"]["succeeded"] == 12
    texts = decoded_contents(azurite, queues["SAMPLE_OUT_QUEUE"])
    assert sorted(t for t in texts if t.startswith("M")) == sorted(f"M{i}" for i in range(12))


def test_failing_message_goes_to_poison_after_max_dequeue_count(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = make_host()  # maxDequeueCount 5, visibilityTimeout 0
    fail = queues["SAMPLE_FAIL_QUEUE"]
    sender(azurite, fail).send_message("doomed")
    host.wait_idle(timeout=20)

    assert sample_app.failed_attempts == [("doomed", n) for n in range(1, 6)]
    records = host.invocations_of("always_fails")
    assert [r.dequeue_count for r in records] == [1, 2, 3, 4, 5]
    assert all(r.outcome == "failed" for r in records)
    assert records[0].error == "RuntimeError: always fails (attempt 1)"
    assert [r.poisoned for r in records] == [False] * 4 + [True]
    assert host.counters["always_fails"] == {"succeeded": 0, "failed": 5, "poisoned": 1}
    # moved with the same (Base64) encoding; the original is gone
    assert raw_contents(azurite, f"{fail}-poison") == [b64("doomed")]
    assert raw_contents(azurite, fail) == []
    # the output set before the exception was never sent
    assert raw_contents(azurite, queues["SAMPLE_OUT_QUEUE"]) == []


def test_the_trigger_queues_and_their_poison_twins_are_created_at_start(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    """As the Bicep provisions them in Azure: `license-guard preflight` checks every -poison
    queue, and locally nothing had failed yet to create one."""
    triggers = [queues["SAMPLE_IN_QUEUE"], queues["SAMPLE_FAIL_QUEUE"]]
    wanted = {*triggers, *(f"{name}-poison" for name in triggers)}
    service = QueueServiceClient.from_connection_string(azurite.connection_string)

    make_host()
    deadline = time.monotonic() + 10
    while not wanted <= (found := {q.name for q in service.list_queues()}):
        assert time.monotonic() < deadline, f"never created: {sorted(wanted - found)}"
        time.sleep(0.05)

    assert f"{queues['SAMPLE_OUT_QUEUE']}-poison" not in found  # an output only: no trigger


def test_max_dequeue_count_comes_from_host_json(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = failing_twice(make_host, azurite, queues, "twice")
    host.wait_idle(timeout=15)
    assert [n for _, n in sample_app.failed_attempts] == [1, 2]
    assert decoded_contents(azurite, f"{queues['SAMPLE_FAIL_QUEUE']}-poison") == ["twice"]


def failing_twice(
    make_host: HostFactory,
    azurite: AzuriteEndpoints,
    queues: dict[str, str],
    message: str,
    *,
    visibility_timeout: str | None = None,
) -> DevHost:
    """A host that tries a queue message twice (`visibility_timeout` apart, if given), with
    `message` sent to the queue whose function always fails."""
    queue_settings: dict[str, Any] = {"maxDequeueCount": 2}
    if visibility_timeout is not None:
        queue_settings["visibilityTimeout"] = visibility_timeout
    host = make_host(host_json={"extensions": {"queues": queue_settings}})
    sender(azurite, queues["SAMPLE_FAIL_QUEUE"]).send_message(message)
    return host


def test_visibility_timeout_delays_the_retry(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = failing_twice(make_host, azurite, queues, "later", visibility_timeout="00:00:02")
    host.wait_idle(timeout=20)
    first, second = host.invocations_of("always_fails")
    assert first.ended is not None
    gap = (second.started - first.ended).total_seconds()
    assert 1.9 <= gap < 5, f"retry came {gap:.2f} s after the failure"


def test_default_visibility_timeout_retries_at_once(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = failing_twice(make_host, azurite, queues, "soon")
    host.wait_idle(timeout=15)
    first, second = host.invocations_of("always_fails")
    assert first.ended is not None
    assert (second.started - first.ended).total_seconds() < 1.5


def test_plain_text_message_fails_to_bind_and_is_poisoned(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    """The encoding trap: a non-Base64 message never reaches the function."""
    host = make_host(host_json={"extensions": {"queues": {"maxDequeueCount": 2}}})
    plain = sender(azurite, queues["SAMPLE_IN_QUEUE"], base64=False)
    plain.send_message("not base64!")
    host.wait_idle(timeout=15)
    records = host.invocations_of("shout")
    assert [r.outcome for r in records] == ["failed", "failed"]
    assert records[0].error is not None
    assert "not Base64" in records[0].error
    assert raw_contents(azurite, f"{queues['SAMPLE_IN_QUEUE']}-poison") == ["not base64!"]
    assert raw_contents(azurite, queues["SAMPLE_OUT_QUEUE"]) == []


def test_message_encoding_none(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = make_host(host_json={"extensions": {"queues": {"messageEncoding": "none"}}})
    plain = sender(azurite, queues["SAMPLE_IN_QUEUE"], base64=False)
    plain.send_message("raw text")
    host.wait_idle(timeout=15)
    assert sorted(raw_contents(azurite, queues["SAMPLE_OUT_QUEUE"])) == [
        "RAW TEXT",
        "dequeue_count=1",
    ]


class SlowReceiveHost(DevHost):
    """A DevHost whose poller gets each receive's answer late, as on a loaded machine: the
    messages are already invisible in Azurite while their invocations have not begun."""

    @staticmethod
    def _receive(client: QueueClient, count: int) -> list[QueueMessage]:
        messages = DevHost._receive(client, count)
        if messages:
            time.sleep(1.0)
        return messages


def test_wait_idle_counts_a_message_taken_but_not_yet_begun(
    azurite: AzuriteEndpoints, settings: dict[str, str], queues: dict[str, str]
) -> None:
    """`scheduled_ok` peeks only visible messages: one a poller has just received must still
    count, or wait_idle returns before its invocation (an e2e test once saw 0 of 1 calls)."""
    host = SlowReceiveHost(sample_app.app, settings, host_json=HOST_JSON).start()
    try:
        sender(azurite, queues["SAMPLE_IN_QUEUE"]).send_message("late")
        host.wait_idle(timeout=15, scheduled_ok=True)
        assert [i.outcome for i in host.invocations_of("shout")] == ["succeeded"]
    finally:
        host.stop()


def test_output_written_by_one_function_triggers_another(
    azurite: AzuriteEndpoints, make_host: HostFactory, queues: dict[str, str]
) -> None:
    """A chain: `first` writes to the queue `second` listens on; wait_idle covers both."""
    app = func.FunctionApp()
    seen: list[str] = []

    @app.queue_trigger(
        arg_name="msg", queue_name="%SAMPLE_IN_QUEUE%", connection="AzureWebJobsStorage"
    )
    @app.queue_output(
        arg_name="out", queue_name="%SAMPLE_OUT_QUEUE%", connection="AzureWebJobsStorage"
    )
    async def first(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set(msg.get_body().decode() + "+1")

    @app.queue_trigger(
        arg_name="msg", queue_name="%SAMPLE_OUT_QUEUE%", connection="AzureWebJobsStorage"
    )
    def second(msg: func.QueueMessage) -> None:
        seen.append(msg.get_body().decode())

    host = make_host(app=app)
    sender(azurite, queues["SAMPLE_IN_QUEUE"]).send_message("start")
    host.wait_idle(timeout=15)
    assert seen == ["start+1"]
    assert raw_contents(azurite, queues["SAMPLE_OUT_QUEUE"]) == []


def test_return_value_output_and_bad_output_types(
    azurite: AzuriteEndpoints, make_host: HostFactory, queues: dict[str, str]
) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(
        arg_name="msg", queue_name="%SAMPLE_IN_QUEUE%", connection="AzureWebJobsStorage"
    )
    @app.queue_output(
        arg_name="$return", queue_name="%SAMPLE_OUT_QUEUE%", connection="AzureWebJobsStorage"
    )
    def returns(msg: func.QueueMessage) -> Any:
        text = msg.get_body().decode()
        return {"not": "allowed"} if text == "dict" else [text, b"bytes"]

    host = make_host(app=app, host_json={"extensions": {"queues": {"maxDequeueCount": 1}}})
    client = sender(azurite, queues["SAMPLE_IN_QUEUE"])
    client.send_message("ok")
    host.wait_idle(timeout=15)
    client.send_message("dict")
    host.wait_idle(timeout=15)
    assert sorted(decoded_contents(azurite, queues["SAMPLE_OUT_QUEUE"])) == ["bytes", "ok"]
    failed = [r for r in host.invocations_of("returns") if r.outcome == "failed"]
    assert len(failed) == 1
    assert failed[0].error is not None
    assert "queue output takes str, bytes" in failed[0].error


def test_wait_idle_times_out_while_work_remains(
    make_host: HostFactory, azurite: AzuriteEndpoints, queues: dict[str, str]
) -> None:
    host = failing_twice(make_host, azurite, queues, "slow retry", visibility_timeout="00:00:03")
    with pytest.raises(TimeoutError, match="not idle"):
        host.wait_idle(timeout=1)
    host.wait_idle(timeout=15)
    assert len(sample_app.failed_attempts) == 2


def test_queue_functions_run_concurrently_up_to_batch_size(
    azurite: AzuriteEndpoints, make_host: HostFactory, queues: dict[str, str]
) -> None:
    app = func.FunctionApp()
    running = {"now": 0, "max": 0}

    @app.queue_trigger(
        arg_name="msg", queue_name="%SAMPLE_IN_QUEUE%", connection="AzureWebJobsStorage"
    )
    async def sleeper(msg: func.QueueMessage) -> None:
        running["now"] += 1  # async functions share the host's loop: no lock needed
        running["max"] = max(running["max"], running["now"])
        await asyncio.sleep(0.4)
        running["now"] -= 1

    host = make_host(app=app, host_json={"extensions": {"queues": {"batchSize": 3}}})
    client = sender(azurite, queues["SAMPLE_IN_QUEUE"])
    for i in range(7):
        client.send_message(f"s{i}")
    host.wait_idle(timeout=20)
    assert host.counters["sleeper"]["succeeded"] == 7
    assert running["max"] == 3
