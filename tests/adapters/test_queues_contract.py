"""The MessageQueue contract, run against the in-memory fake and against Azurite alike."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue._message_encoding import NoDecodePolicy, NoEncodePolicy

from devhost.azurite import AzuriteEndpoints
from shared.adapters.queues import AzureQueue, queue_client, queues_for
from shared.fakes.queues import InMemoryQueue, in_memory_queues
from shared.ports.messages import (
    DeltaSweep,
    LifecycleEvent,
    ReprocessUser,
    SyncCompleted,
    encode_message,
)
from shared.ports.queues import (
    GROUPS_CHANGED,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    SUBSCRIPTION_LIFECYCLE,
    SYNC_COMPLETED,
    MessageQueue,
    StaleReceipt,
)

ROOT = Path(__file__).resolve().parents[2]
U1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def sweep(n: int = 1) -> DeltaSweep:
    return DeltaSweep(reason=f"sweep {n}", correlation_id=f"c-{n}")


@dataclass
class QueueUnderTest:
    queue: MessageQueue
    put_text: Callable[[str], None]  # store text as the Functions output binding would
    wait: Callable[[float], None]  # let time pass (the fake's clock, or really)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unique_name() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["memory", "azurite"])
def subject(request: pytest.FixtureRequest) -> QueueUnderTest:
    name = unique_name()
    if request.param == "memory":
        clock = FakeClock()
        fake = InMemoryQueue(name, clock)
        return QueueUnderTest(fake, fake.put_raw, clock.advance)
    azurite: AzuriteEndpoints = request.getfixturevalue("azurite")
    raw = QueueClient.from_connection_string(
        azurite.connection_string, name, message_encode_policy=TextBase64EncodePolicy()
    )
    raw.create_queue()
    queue = AzureQueue.from_connection(azurite.connection_string, name)
    return QueueUnderTest(queue, raw.send_message, time.sleep)


def test_a_sent_message_is_received_decoded_on_its_first_delivery(subject: QueueUnderTest) -> None:
    subject.queue.send(sweep())

    [got] = subject.queue.receive(1)

    assert got.message == sweep()
    assert got.dequeue_count == 1
    assert got.error is None


def test_an_empty_queue_receives_nothing(subject: QueueUnderTest) -> None:
    assert subject.queue.receive(32) == []


def test_a_received_message_stays_hidden_during_its_visibility_timeout(
    subject: QueueUnderTest,
) -> None:
    subject.queue.send(sweep())
    subject.queue.receive(1, visibility_timeout=30)

    assert subject.queue.receive(1) == []
    assert subject.queue.approximate_count() == 1


def test_an_undeleted_message_comes_back_and_the_old_receipt_goes_stale(
    subject: QueueUnderTest,
) -> None:
    subject.queue.send(sweep())
    [first] = subject.queue.receive(1, visibility_timeout=1)
    subject.wait(1.2)

    [again] = subject.queue.receive(1)

    assert again.id == first.id
    assert again.dequeue_count == 2
    with pytest.raises(StaleReceipt):
        subject.queue.delete(first)


def test_a_deleted_message_is_gone_and_cannot_be_deleted_twice(subject: QueueUnderTest) -> None:
    subject.queue.send(sweep())
    [got] = subject.queue.receive(1)

    subject.queue.delete(got)

    assert subject.queue.approximate_count() == 0
    with pytest.raises(StaleReceipt):
        subject.queue.delete(got)


def test_a_delayed_send_is_invisible_until_its_delay_passes(subject: QueueUnderTest) -> None:
    subject.queue.send(sweep(), visibility_timeout=60)

    assert subject.queue.receive(1) == []
    assert subject.queue.peek_raw(1) == []
    assert subject.queue.approximate_count() == 1


def test_receive_takes_at_most_the_number_asked_for(subject: QueueUnderTest) -> None:
    for n in range(5):
        subject.queue.send(sweep(n))

    first = subject.queue.receive(3)
    rest = subject.queue.receive(32)

    assert len(first) == 3
    assert {m.message for m in first + rest} == {sweep(n) for n in range(5)}


def test_peek_shows_the_text_without_receiving_it(subject: QueueUnderTest) -> None:
    subject.queue.send(sweep())

    peeked = subject.queue.peek_raw(5)
    [got] = subject.queue.receive(1)

    assert peeked == [encode_message(sweep())]
    assert got.dequeue_count == 1


def test_text_that_is_not_one_of_our_messages_comes_back_raw_with_the_reason(
    subject: QueueUnderTest,
) -> None:
    subject.put_text('{"type": "Teleport"}')

    [got] = subject.queue.receive(1)

    assert got.message is None
    assert got.text == '{"type": "Teleport"}'
    assert got.error is not None
    assert "unknown message type 'Teleport'" in got.error


def test_browse_reads_every_message_and_leaves_each_visible_and_unchanged(
    subject: QueueUnderTest,
) -> None:
    """A peek shows 32 at most; browsing pages through all of them (40 here)."""
    texts = [f"not base64 and not ours {i}!" for i in range(20)]
    texts += [encode_message(sweep(i)) for i in range(20)]
    for text in texts[:20]:
        subject.put_text(text)
    for i in range(20):
        subject.queue.send(sweep(i))

    browsed = subject.queue.browse_raw()
    again = subject.queue.browse_raw()

    assert sorted(browsed) == sorted(texts)
    assert sorted(again) == sorted(texts)  # visible again at once, content as stored
    assert len(subject.queue.peek_raw(32)) == 32
    assert subject.queue.approximate_count() == 40


def test_browse_stops_at_its_limit(subject: QueueUnderTest) -> None:
    for i in range(5):
        subject.queue.send(sweep(i))

    assert len(subject.queue.browse_raw(3)) == 3
    assert len(subject.queue.browse_raw(40)) == 5


@pytest.mark.parametrize("count", [0, 33])
def test_receive_and_peek_take_one_to_thirty_two_messages(
    subject: QueueUnderTest, count: int
) -> None:
    with pytest.raises(ValueError, match="between 1 and 32"):
        subject.queue.receive(count)
    with pytest.raises(ValueError, match="between 1 and 32"):
        subject.queue.peek_raw(count)


# --- Azure specifics: the encoding the Functions host expects -----------------------------------


def test_the_adapter_encodes_as_host_json_tells_the_functions_trigger_to_decode() -> None:
    encoding = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"][
        "messageEncoding"
    ]
    client = queue_client("UseDevelopmentStorage=true", GROUPS_CHANGED)

    assert encoding == "base64"
    assert isinstance(client._message_encode_policy, TextBase64EncodePolicy)
    assert isinstance(client._message_decode_policy, TextBase64DecodePolicy)


def test_a_message_sent_by_our_sender_is_stored_as_base64(azurite: AzuriteEndpoints) -> None:
    name = unique_name()
    msg = ReprocessUser(user_id=U1, causes=("c",), reason="r", correlation_id="c")
    AzureQueue.from_connection(azurite.connection_string, name).send(msg)
    raw = QueueClient.from_connection_string(
        azurite.connection_string, name, message_decode_policy=NoDecodePolicy()
    )

    [stored] = raw.peek_messages(1)

    assert base64.b64decode(stored.content, validate=True).decode() == encode_message(msg)


def test_a_message_sent_without_base64_is_reported_as_unreadable_by_the_trigger(
    azurite: AzuriteEndpoints,
) -> None:
    name = unique_name()
    queue = AzureQueue.from_connection(azurite.connection_string, name)
    raw = QueueClient.from_connection_string(
        azurite.connection_string, name, message_encode_policy=NoEncodePolicy()
    )
    queue.send(sweep(1))  # creates the queue
    raw.send_message(encode_message(sweep(2)))

    got = queue.receive(2)

    assert [m.message for m in got] == [sweep(1), None]
    assert got[1].error is not None
    assert "not Base64" in got[1].error
    assert got[1].text == encode_message(sweep(2))


def test_queues_for_names_the_five_contract_queues_and_their_poison_twins() -> None:
    queues = queues_for("UseDevelopmentStorage=true")

    assert [q.name for q in queues.all()] == [
        "groups-changed",
        "recompute-users",
        "reprocess-user",
        "sync-completed",
        "subscription-lifecycle",
    ]
    assert sorted(queues.poison) == [
        "groups-changed-poison",
        "recompute-users-poison",
        "reprocess-user-poison",
        "subscription-lifecycle-poison",
        "sync-completed-poison",
    ]


def test_each_message_type_is_routed_to_its_queue() -> None:
    queues = in_memory_queues()
    sync = SyncCompleted(
        tenant_id=U1, completed_at="2026-03-01T07:30:00Z", source="s", correlation_id="c"
    )

    queues.send(sweep())
    queues.send(sync)
    queues.send(
        LifecycleEvent(
            subscription_id=U1, event="missed", correlation_id="c", received_at=sync.completed_at
        )
    )

    assert queues.by_name(GROUPS_CHANGED).approximate_count() == 1
    assert queues.by_name(SYNC_COMPLETED).approximate_count() == 1
    assert queues.by_name(SUBSCRIPTION_LIFECYCLE).approximate_count() == 1
    assert queues.by_name(RECOMPUTE_USERS).approximate_count() == 0
    assert queues.by_name(REPROCESS_USER).approximate_count() == 0
