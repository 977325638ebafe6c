"""Queue triggers: one poller per queue function (batch size, backoff to maxPollingInterval,
woken by the app's own sends), retries with the visibility timeout, the -poison queue after
maxDequeueCount, and waiting until every trigger queue is drained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FuncQueueMessage

from devhost.index import QUEUE, FunctionSpec
from devhost.runtime import HostRuntime

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

    from devhost.invocation import Invocation

log = logging.getLogger("devhost")

# The host keeps a received message invisible this long while the function runs (and leaves it
# so after a crash); locally nothing renews it, so it must outlast any sensible invocation.
RECEIVE_VISIBILITY_SECONDS = 600


def poison_queue_name(queue_name: str) -> str:
    """Where the host moves a message after `maxDequeueCount` failed attempts."""
    return f"{queue_name}-poison"


class QueueTriggers(HostRuntime):
    """Polls the app's queue functions (mixed into `DevHost`)."""

    async def _poll(self, spec: FunctionSpec) -> None:
        await asyncio.to_thread(self._create_queues, spec)
        client = await asyncio.to_thread(self._client, spec.connection, spec.queue_name)
        wake = self._wake[(spec.connection, spec.queue_name)]
        batch = self.options.queues.batch_size
        running: set[asyncio.Task[None]] = set()
        interval = self.poll_interval
        warned = False
        while True:
            free = batch - len(running)
            if free <= 0:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            wake.clear()
            with self._state:
                self._receiving += 1
            try:
                try:
                    messages = await asyncio.to_thread(self._receive, client, free)
                    warned = False
                except ResourceNotFoundError:
                    messages = []  # like the host: a missing queue is polled until it exists
                except AzureError as error:
                    if not warned:
                        log.warning("polling %r failed: %s", spec.queue_name, error)
                        warned = True
                    messages = []
                for message in messages:
                    record = self._begin(spec, dequeue_count=int(message.dequeue_count or 1))
                    task = self._spawn(self._process(spec, client, message, record))
                    running.add(task)
                    task.add_done_callback(running.discard)
            finally:
                # Only now: a received message is invisible in storage from the moment Azurite
                # hands it out, so until its invocation has begun only this says it is taken.
                with self._state:
                    self._receiving -= 1
            if messages:
                interval = self.poll_interval
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
                interval = self.poll_interval
                continue
            interval = min(interval * 2, self.max_poll_interval)

    def _create_queues(self, spec: FunctionSpec) -> None:
        """The trigger's queue and its -poison twin, as a provisioned storage account has them
        (`infra/app/storage.bicep` creates both; the Functions host neither), so a check of the
        local account finds them before a message was sent or failed."""
        for name in (spec.queue_name, poison_queue_name(spec.queue_name)):
            try:
                with contextlib.suppress(ResourceExistsError):
                    self._client(spec.connection, name).create_queue()
            except AzureError as error:  # storage not there (yet): polling says so, and waits
                log.warning("could not create queue %r: %s", name, error)
                return
            self._created_queues.add((spec.connection, name))

    @staticmethod
    def _receive(client: QueueClient, count: int) -> list[QueueMessage]:
        return list(
            client.receive_messages(
                messages_per_page=min(count, 32),
                max_messages=count,
                visibility_timeout=RECEIVE_VISIBILITY_SECONDS,
            )
        )

    async def _process(
        self, spec: FunctionSpec, client: QueueClient, message: QueueMessage, record: Invocation
    ) -> None:
        q = self.options.queues
        count = int(message.dequeue_count or 1)
        try:
            if count > q.max_dequeue_count:  # e.g. left invisible by a crash mid-run
                raise RuntimeError(f"message has reached MaxDequeueCount of {q.max_dequeue_count}")
            body = self._decode(str(message.content))
            trigger = FuncQueueMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=body,
                dequeue_count=count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                pop_receipt=message.pop_receipt,
            )
            await self._call(spec, trigger, record)
        except Exception as error:
            poison = count >= q.max_dequeue_count
            try:
                if poison:
                    await asyncio.to_thread(self._to_poison, spec, client, message)
                else:
                    seconds = int(q.visibility_timeout.total_seconds())
                    with self._state:
                        self._retry_due = max(
                            self._retry_due, time.monotonic() + q.visibility_timeout.total_seconds()
                        )
                    await asyncio.to_thread(
                        client.update_message,
                        message,
                        pop_receipt=message.pop_receipt,
                        visibility_timeout=seconds,
                    )
            except AzureError as storage_error:
                log.warning("could not release message %s: %s", message.id, storage_error)
            self._end(record, error, poisoned=poison)
            return
        try:
            await asyncio.to_thread(client.delete_message, message, message.pop_receipt)
        except AzureError as storage_error:
            log.warning("could not delete message %s: %s", message.id, storage_error)
        self._end(record)

    def _to_poison(self, spec: FunctionSpec, client: QueueClient, message: QueueMessage) -> None:
        poison = self._client(spec.connection, poison_queue_name(spec.queue_name))
        with contextlib.suppress(ResourceExistsError):
            poison.create_queue()
        poison.send_message(message.content)  # copied as stored: same encoding
        client.delete_message(message, message.pop_receipt)

    def _queue_counts(self, visible_only: bool = False) -> dict[str, int]:
        counts: dict[str, int] = {}
        for spec in self.functions.values():
            if spec.trigger != QUEUE:
                continue
            client = self._client(spec.connection, spec.queue_name)
            try:
                if visible_only:
                    counts[spec.queue_name] = len(client.peek_messages(max_messages=32))
                    continue
                counts[spec.queue_name] = (
                    client.get_queue_properties().approximate_message_count or 0
                )
            except ResourceNotFoundError:
                counts[spec.queue_name] = 0
        return counts

    # ---------------------------------------------------------------- idleness
    async def wait_idle_async(
        self, timeout: float = 30.0, settle: float = 0.0, *, scheduled_ok: bool = False
    ) -> None:
        """Wait until every trigger queue is empty and no invocation is in flight (nor any
        message taken by a poller whose invocation has not begun yet).

        `scheduled_ok`: messages sent with a visibility delay (the service's "look again in
        15 minutes") do not count, as long as no failed message is waiting for its retry.
        Works from any event loop (it only reads thread-safe state and storage).
        """
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while True:
            with self._state:
                before = (self._started_count, self._ended_count, self._receiving)
                retrying = self._retry_due > time.monotonic()
            if before[0] == before[1] and not before[2]:
                counts = await asyncio.to_thread(self._queue_counts, scheduled_ok and not retrying)
                with self._state:
                    after = (self._started_count, self._ended_count, self._receiving)
                if after == before and not any(counts.values()):
                    if settle <= 0:
                        return
                    await asyncio.sleep(settle)
                    settle = 0
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"devhost not idle after {timeout:.1f} s: {self.in_flight} in flight, "
                    f"queue counts {counts}"
                )
            await asyncio.sleep(0.05)

    def wait_idle(
        self, timeout: float = 30.0, settle: float = 0.0, *, scheduled_ok: bool = False
    ) -> None:
        """Blocking `wait_idle_async` (call it from any thread but the host's own loop)."""
        asyncio.run(self.wait_idle_async(timeout, settle, scheduled_ok=scheduled_ok))
