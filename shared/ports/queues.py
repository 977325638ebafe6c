"""The `MessageQueue` port: License Guard's Storage queues, their names and what a receive returns.

Queue names are a contract with the function bindings: `GROUPS_CHANGED`, `RECOMPUTE_USERS`,
`REPROCESS_USER`, `SYNC_COMPLETED`, `SUBSCRIPTION_LIFECYCLE`, and for each the host's
``<name>-poison`` twin, where a message lands after host.json ``maxDequeueCount`` failed attempts.
This module imports no SDK, so declaring a queue trigger does not pay for the Storage SDK at
cold start.

Delivery is at least once: handle, then `delete`. A message received and not deleted comes
back after its visibility timeout with a higher ``dequeue_count``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from shared.ports import messages
from shared.ports.messages import Message, MessageError, decode_message

GROUPS_CHANGED: Final = "groups-changed"
RECOMPUTE_USERS: Final = "recompute-users"
REPROCESS_USER: Final = "reprocess-user"
SYNC_COMPLETED: Final = "sync-completed"
SUBSCRIPTION_LIFECYCLE: Final = "subscription-lifecycle"
QUEUE_NAMES: Final = (
    GROUPS_CHANGED,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    SYNC_COMPLETED,
    SUBSCRIPTION_LIFECYCLE,
)
POISON_SUFFIX: Final = "-poison"

MAX_RECEIVE: Final = 32  # the Storage service's limit per Get Messages call
MAX_BROWSE: Final = 5_000
"""`browse_raw` reads at most this many messages (157 Get Messages calls)."""
BROWSE_HOLD_SECONDS: Final = 120
"""How long `browse_raw` hides what it has read, so the next page shows other messages."""
DEFAULT_VISIBILITY_TIMEOUT: Final = 30  # seconds; matches host.json visibilityTimeout
NOT_BASE64: Final = "not Base64: the Functions queue trigger cannot read it"

QUEUE_OF: Final[dict[type[Message], str]] = {
    messages.GroupsChanged: GROUPS_CHANGED,
    messages.DeltaSweep: GROUPS_CHANGED,
    messages.RecomputeUsers: RECOMPUTE_USERS,
    messages.ReprocessUser: REPROCESS_USER,
    messages.SyncCompleted: SYNC_COMPLETED,
    messages.LifecycleEvent: SUBSCRIPTION_LIFECYCLE,
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


def read_message(
    message_id: str, pop_receipt: str, dequeue_count: int, text: str
) -> ReceivedMessage:
    error = NOT_BASE64 if isinstance(text, NotBase64Text) else None
    message = None
    if error is None:
        try:
            message = decode_message(text)
        except MessageError as problem:
            error = str(problem)
    return ReceivedMessage(message_id, pop_receipt, dequeue_count, str(text), message, error)


def check_receive_count(n: int) -> None:
    if not 1 <= n <= MAX_RECEIVE:
        raise ValueError(f"between 1 and {MAX_RECEIVE} messages at a time, not {n}")


# ---------------------------------------------------------------------------------------------
# Azure Storage queues


class NotBase64Text(str):
    """Stored text that is not Base64, passed through by the lenient decode policy."""

    __slots__ = ()


# ---------------------------------------------------------------------------------------------
# all of License Guard's queues


@dataclass(frozen=True)
class Queues:
    """The five named queues and their poison twins (`poison` is for reading)."""

    groups_changed: MessageQueue
    recompute_users: MessageQueue
    reprocess_user: MessageQueue
    sync_completed: MessageQueue
    subscription_lifecycle: MessageQueue
    poison: dict[str, MessageQueue]

    def by_name(self, queue_name: str) -> MessageQueue:
        named = {q.name: q for q in self.all()} | self.poison
        try:
            return named[queue_name]
        except KeyError:
            raise KeyError(f"no queue named {queue_name!r}") from None

    def all(self) -> tuple[MessageQueue, ...]:
        return (
            self.groups_changed,
            self.recompute_users,
            self.reprocess_user,
            self.sync_completed,
            self.subscription_lifecycle,
        )

    def for_message(self, msg: Message) -> MessageQueue:
        return self.by_name(queue_name_for(msg))

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        """Send `msg` to the queue its type travels on."""
        self.for_message(msg).send(msg, visibility_timeout=visibility_timeout)


def queue_set(make: Callable[[str], MessageQueue]) -> Queues:
    return Queues(
        groups_changed=make(GROUPS_CHANGED),
        recompute_users=make(RECOMPUTE_USERS),
        reprocess_user=make(REPROCESS_USER),
        sync_completed=make(SYNC_COMPLETED),
        subscription_lifecycle=make(SUBSCRIPTION_LIFECYCLE),
        poison={poison_name(n): make(poison_name(n)) for n in QUEUE_NAMES},
    )
