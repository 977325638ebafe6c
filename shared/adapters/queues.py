"""Storage queues for License Guard's messages: the `MessageQueue` port, Azure and in-memory.

Queue names are a contract with the function bindings: `GROUPS_CHANGED`, `RECOMPUTE_USERS`,
`REPROCESS_USER`, `SYNC_COMPLETED`, and for each the host's ``<name>-poison`` twin, where a
message lands after host.json ``maxDequeueCount`` failed attempts.

Encoding: the Functions queue trigger reads Base64 (host.json ``messageEncoding: base64``),
but the Storage SDK sends raw text by default. A raw message cannot be bound, is retried and
goes to ``-poison`` with no useful error. So `AzureQueue` always sends with
`TextBase64EncodePolicy` and reads with a Base64 decode policy; a test ties both to host.json.
Reading is lenient: a message that is not Base64 (or not one of our messages) comes back as a
`ReceivedMessage` with ``message=None``, its raw text and the reason, instead of failing the
whole batch; that is what the poison watch needs to report it.

Delivery is at least once: handle, then `delete`. A message received and not deleted comes
back after its visibility timeout with a higher ``dequeue_count``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.messages import (
    DeltaSweep,
    GroupsChanged,
    Message,
    MessageError,
    RecomputeUsers,
    ReprocessUser,
    SyncCompleted,
    decode_message,
    encode_message,
)
from shared.queue_names import (
    GROUPS_CHANGED,
    POISON_SUFFIX,
    QUEUE_NAMES,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    SYNC_COMPLETED,
)
from shared.settings import StorageConnection

MAX_RECEIVE: Final = 32  # the Storage service's limit per Get Messages call
MAX_BROWSE: Final = 5_000
"""`browse_raw` reads at most this many messages (157 Get Messages calls)."""
BROWSE_HOLD_SECONDS: Final = 120
"""How long `browse_raw` hides what it has read, so the next page shows other messages."""
DEFAULT_VISIBILITY_TIMEOUT: Final = 30  # seconds; matches host.json visibilityTimeout
_NOT_BASE64: Final = "not Base64: the Functions queue trigger cannot read it"

QUEUE_OF: Final[dict[type[Message], str]] = {
    GroupsChanged: GROUPS_CHANGED,
    DeltaSweep: GROUPS_CHANGED,
    RecomputeUsers: RECOMPUTE_USERS,
    ReprocessUser: REPROCESS_USER,
    SyncCompleted: SYNC_COMPLETED,
}
"""Which queue each message type travels on."""


def poison_name(queue_name: str) -> str:
    """The host's poison twin of a queue: ``<name>-poison``."""
    return queue_name + POISON_SUFFIX


def queue_name_for(msg: Message) -> str:
    return QUEUE_OF[type(msg)]


class StaleReceipt(LookupError):
    """The message was deleted or received again since; this receipt no longer holds it."""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One received message. `message` is None when the text is not one of our messages;
    then `error` says why and `text` holds what was stored (the poison watch reports it)."""

    id: str
    pop_receipt: str
    dequeue_count: int
    text: str
    message: Message | None
    error: str | None = None


class MessageQueue(Protocol):
    """One named queue of License Guard messages."""

    @property
    def name(self) -> str: ...

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        """Enqueue `msg`; with `visibility_timeout` (seconds) it shows up only after that."""
        ...

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` (1-32) visible messages, hidden for `visibility_timeout` s."""
        ...

    def delete(self, received: ReceivedMessage) -> None:
        """Remove a received message; StaleReceipt if it was deleted or re-received since."""
        ...

    def peek_raw(self, n: int = MAX_RECEIVE) -> list[str]:
        """The text of up to `n` (1-32) visible messages, oldest first, without receiving them."""
        ...

    def browse_raw(self, limit: int = MAX_BROWSE) -> list[str]:
        """The text of every visible message (up to `limit`), leaving each in the queue.

        Peek shows only the first 32, so this receives page after page (each message hidden
        for `BROWSE_HOLD_SECONDS` meanwhile) and then makes what it read visible again at
        once. The dequeue count goes up by one: meant for queues nothing is triggered by
        (the poison queues)."""
        ...

    def approximate_count(self) -> int:
        """About how many messages the queue holds, visible or not."""
        ...


def _read(message_id: str, pop_receipt: str, dequeue_count: int, text: str) -> ReceivedMessage:
    error = _NOT_BASE64 if isinstance(text, _NotBase64) else None
    message = None
    if error is None:
        try:
            message = decode_message(text)
        except MessageError as problem:
            error = str(problem)
    return ReceivedMessage(message_id, pop_receipt, dequeue_count, str(text), message, error)


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_RECEIVE:
        raise ValueError(f"between 1 and {MAX_RECEIVE} messages at a time, not {n}")


# ---------------------------------------------------------------------------------------------
# Azure Storage queues


class _NotBase64(str):
    """Stored text that is not Base64, passed through by the lenient decode policy."""

    __slots__ = ()


class LenientTextBase64DecodePolicy(TextBase64DecodePolicy):
    """Base64 like the Functions host; text that is not Base64 passes through, marked."""

    def decode(self, content: str, response: Any) -> str:
        # Not super().decode: the SDK's DecodeError fails to construct (AttributeError on the
        # response), and validate=True rejects stray characters as the host's decoder does.
        try:
            return base64.b64decode(content, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError
            return _NotBase64(content)


def queue_client(
    storage: str | StorageConnection,
    queue_name: str,
    *,
    credential: TokenCredential | None = None,
) -> QueueClient:
    """A QueueClient for `queue_name` with the Base64 policies the Functions host expects.

    From a connection string, or the queue service URI and `credential`: the one credential
    the composition root (`shared.bootstrap.storage_credential`) made for every storage client.
    """
    policies: dict[str, Any] = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": LenientTextBase64DecodePolicy(),
    }
    if isinstance(storage, str):
        return QueueClient.from_connection_string(storage, queue_name, **policies)
    if storage.connection_string:
        return QueueClient.from_connection_string(storage.connection_string, queue_name, **policies)
    if not storage.queue_service_uri:
        raise ValueError("storage connection has no queue service URI")
    if credential is None:
        raise ValueError(
            "identity-based storage needs a credential: pass the one from "
            "shared.bootstrap.storage_credential(settings)"
        )
    return QueueClient(storage.queue_service_uri, queue_name, credential=credential, **policies)


class AzureQueue:
    """`MessageQueue` over one Azure Storage queue; the queue is created on first use."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client
        self._ready = False

    @classmethod
    def from_connection(
        cls,
        storage: str | StorageConnection,
        queue_name: str,
        *,
        credential: TokenCredential | None = None,
    ) -> AzureQueue:
        return cls(queue_client(storage, queue_name, credential=credential))

    @property
    def name(self) -> str:
        return str(self._client.queue_name)

    @property
    def client(self) -> QueueClient:
        return self._client

    def _ensure(self) -> None:
        if self._ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self._client.create_queue()
        self._ready = True

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        text = encode_message(msg)
        self._ensure()
        self._client.send_message(text, visibility_timeout=visibility_timeout)

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    ) -> list[ReceivedMessage]:
        _check_count(max_messages)
        self._ensure()
        pages = self._client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
        )
        return [
            _read(m.id, m.pop_receipt or "", m.dequeue_count or 0, m.content or "")
            for m in itertools.islice(pages, max_messages)
        ]

    def delete(self, received: ReceivedMessage) -> None:
        self._ensure()
        try:
            self._client.delete_message(received.id, received.pop_receipt)
        except ResourceNotFoundError:
            raise StaleReceipt(f"{self.name}: message {received.id} is gone") from None
        except HttpResponseError as error:
            if (
                error.status_code == 400
                and getattr(error, "error_code", None) == "PopReceiptMismatch"
            ):
                raise StaleReceipt(
                    f"{self.name}: message {received.id} was received again"
                ) from None
            raise

    def peek_raw(self, n: int = MAX_RECEIVE) -> list[str]:
        _check_count(n)
        self._ensure()
        return [str(m.content or "") for m in self._client.peek_messages(max_messages=n)]

    def browse_raw(self, limit: int = MAX_BROWSE) -> list[str]:
        self._ensure()
        held: list[tuple[str, str]] = []
        texts: list[str] = []
        try:
            while len(texts) < limit:
                n = min(MAX_RECEIVE, limit - len(texts))
                pages = self._client.receive_messages(
                    messages_per_page=n, max_messages=n, visibility_timeout=BROWSE_HOLD_SECONDS
                )
                page = list(itertools.islice(pages, n))
                if not page:
                    break
                for m in page:
                    held.append((m.id, m.pop_receipt or ""))
                    texts.append(str(m.content or ""))
        finally:
            for message_id, receipt in held:
                # By id, not the message object: given the object, the SDK re-uploads its
                # (decoded) content, which would re-encode a raw poisoned message.
                with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
                    self._client.update_message(
                        message_id, pop_receipt=receipt, visibility_timeout=0
                    )
        return texts

    def approximate_count(self) -> int:
        self._ensure()
        return int(self._client.get_queue_properties().approximate_message_count or 0)


# ---------------------------------------------------------------------------------------------
# in memory


@dataclass(slots=True)
class _Stored:
    id: str
    text: str
    visible_at: float
    dequeue_count: int = 0
    pop_receipt: str = ""


@dataclass
class InMemoryQueue:
    """`MessageQueue` in a list, with visibility timeouts on `clock` (seconds, monotonic)."""

    name: str
    clock: Callable[[], float] = time.monotonic
    _messages: list[_Stored] = field(default_factory=list, repr=False)

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        self.put_raw(encode_message(msg), visibility_timeout=visibility_timeout)

    def put_raw(self, text: str, *, visibility_timeout: int | None = None) -> None:
        """Store text as-is (as another producer might); for tests of bad messages."""
        visible_at = self.clock() + (visibility_timeout or 0)
        self._messages.append(_Stored(str(uuid.uuid4()), text, visible_at))

    def _visible(self) -> list[_Stored]:
        now = self.clock()
        return [m for m in self._messages if m.visible_at <= now]

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    ) -> list[ReceivedMessage]:
        _check_count(max_messages)
        taken = self._visible()[:max_messages]
        for stored in taken:
            stored.dequeue_count += 1
            stored.pop_receipt = str(uuid.uuid4())
            stored.visible_at = self.clock() + visibility_timeout
        return [_read(m.id, m.pop_receipt, m.dequeue_count, m.text) for m in taken]

    def delete(self, received: ReceivedMessage) -> None:
        for stored in self._messages:
            if stored.id == received.id:
                if stored.pop_receipt != received.pop_receipt:
                    raise StaleReceipt(f"{self.name}: message {received.id} was received again")
                self._messages.remove(stored)
                return
        raise StaleReceipt(f"{self.name}: message {received.id} is gone")

    def peek_raw(self, n: int = MAX_RECEIVE) -> list[str]:
        _check_count(n)
        return [m.text for m in self._visible()[:n]]

    def browse_raw(self, limit: int = MAX_BROWSE) -> list[str]:
        visible = self._visible()[:limit]
        for stored in visible:
            stored.dequeue_count += 1
        return [m.text for m in visible]

    def approximate_count(self) -> int:
        return len(self._messages)


# ---------------------------------------------------------------------------------------------
# all of License Guard's queues


@dataclass(frozen=True)
class Queues:
    """The four named queues and their poison twins (`poison` is for reading)."""

    groups_changed: MessageQueue
    recompute_users: MessageQueue
    reprocess_user: MessageQueue
    sync_completed: MessageQueue
    poison: dict[str, MessageQueue]

    def by_name(self, queue_name: str) -> MessageQueue:
        named = {q.name: q for q in self.all()} | self.poison
        try:
            return named[queue_name]
        except KeyError:
            raise KeyError(f"no queue named {queue_name!r}") from None

    def all(self) -> tuple[MessageQueue, ...]:
        return (self.groups_changed, self.recompute_users, self.reprocess_user, self.sync_completed)

    def for_message(self, msg: Message) -> MessageQueue:
        return self.by_name(queue_name_for(msg))

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        """Send `msg` to the queue its type travels on."""
        self.for_message(msg).send(msg, visibility_timeout=visibility_timeout)


def _queues(make: Callable[[str], MessageQueue]) -> Queues:
    return Queues(
        groups_changed=make(GROUPS_CHANGED),
        recompute_users=make(RECOMPUTE_USERS),
        reprocess_user=make(REPROCESS_USER),
        sync_completed=make(SYNC_COMPLETED),
        poison={poison_name(n): make(poison_name(n)) for n in QUEUE_NAMES},
    )


def queues_for(
    storage: str | StorageConnection, *, credential: TokenCredential | None = None
) -> Queues:
    """All of License Guard's Azure queues; no network call until a queue is first used.

    In identity mode every queue's client shares `credential` (one token cache, not eight)."""
    return _queues(lambda name: AzureQueue.from_connection(storage, name, credential=credential))


def in_memory_queues(clock: Callable[[], float] = time.monotonic) -> Queues:
    """The same set of queues, in memory, for tests and local runs without Azurite."""
    return _queues(lambda name: InMemoryQueue(name, clock))
