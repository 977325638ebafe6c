"""`InMemoryQueue`: the `MessageQueue` port in memory, for tests and local runs without Azurite."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.ports import queues as port
from shared.ports.messages import Message, encode_message
from shared.ports.queues import ReceivedMessage, StaleReceipt, check_receive_count, read_message

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
        self, max_messages: int = 1, *, visibility_timeout: int = port.DEFAULT_VISIBILITY_TIMEOUT
    ) -> list[ReceivedMessage]:
        check_receive_count(max_messages)
        taken = self._visible()[:max_messages]
        for stored in taken:
            stored.dequeue_count += 1
            stored.pop_receipt = str(uuid.uuid4())
            stored.visible_at = self.clock() + visibility_timeout
        return [read_message(m.id, m.pop_receipt, m.dequeue_count, m.text) for m in taken]

    def delete(self, received: ReceivedMessage) -> None:
        for stored in self._messages:
            if stored.id == received.id:
                if stored.pop_receipt != received.pop_receipt:
                    raise StaleReceipt(f"{self.name}: message {received.id} was received again")
                self._messages.remove(stored)
                return
        raise StaleReceipt(f"{self.name}: message {received.id} is gone")

    def peek_raw(self, n: int = port.MAX_RECEIVE) -> list[str]:
        check_receive_count(n)
        return [m.text for m in self._visible()[:n]]

    def browse_raw(self, limit: int = port.MAX_BROWSE) -> list[str]:
        visible = self._visible()[:limit]
        for stored in visible:
            stored.dequeue_count += 1
        return [m.text for m in visible]

    def approximate_count(self) -> int:
        return len(self._messages)


def in_memory_queues(clock: Callable[[], float] = time.monotonic) -> port.Queues:
    """The same set of queues, in memory, for tests and local runs without Azurite."""
    return port.queue_set(lambda name: InMemoryQueue(name, clock))
