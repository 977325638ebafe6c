"""Storage queues for License Guard's messages: the `MessageQueue` port, Azure and in-memory.

Queue names are a contract with the function bindings: `GROUPS_CHANGED`, `RECOMPUTE_USERS`,
`REPROCESS_USER`, `SYNC_COMPLETED`, `SUBSCRIPTION_LIFECYCLE`, and for each the host's
``<name>-poison`` twin, where a message lands after host.json ``maxDequeueCount`` failed attempts.

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
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.adapters.storage_clients import CreatedOnFirstUse, storage_client
from shared.platform.settings import StorageConnection
from shared.ports.messages import (
    Message,
    encode_message,
)
from shared.ports.queues import (
    BROWSE_HOLD_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT,
    MAX_BROWSE,
    MAX_RECEIVE,
    NotBase64Text,
    Queues,
    ReceivedMessage,
    StaleReceipt,
    check_receive_count,
    queue_set,
    read_message,
)


class LenientTextBase64DecodePolicy(TextBase64DecodePolicy):
    """Base64 like the Functions host; text that is not Base64 passes through, marked."""

    def decode(self, content: str, response: Any) -> str:
        # Not super().decode: the SDK's DecodeError fails to construct (AttributeError on the
        # response), and validate=True rejects stray characters as the host's decoder does.
        try:
            return base64.b64decode(content, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError
            return NotBase64Text(content)


def queue_client(
    storage: str | StorageConnection,
    queue_name: str,
    *,
    credential: TokenCredential | None = None,
) -> QueueClient:
    """A QueueClient for `queue_name` with the Base64 policies the Functions host expects.

    From a connection string, or the queue service URI and `credential`: the one credential
    the composition root made for every storage client (`credentials.storage_credential`).
    """
    return storage_client(
        QueueClient,
        storage,
        queue_name,
        credential,
        service="queue",
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=LenientTextBase64DecodePolicy(),
    )


class AzureQueue(CreatedOnFirstUse[QueueClient]):
    """`MessageQueue` over one Azure Storage queue; the queue is created on first use."""

    connect = staticmethod(queue_client)

    def _create(self) -> None:
        self._client.create_queue()

    def send(self, msg: Message, *, visibility_timeout: int | None = None) -> None:
        text = encode_message(msg)
        self._ensure()
        self._client.send_message(text, visibility_timeout=visibility_timeout)

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    ) -> list[ReceivedMessage]:
        check_receive_count(max_messages)
        self._ensure()
        pages = self._client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
        )
        return [
            read_message(m.id, m.pop_receipt or "", m.dequeue_count or 0, m.content or "")
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
        check_receive_count(n)
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


def queues_for(
    storage: str | StorageConnection, *, credential: TokenCredential | None = None
) -> Queues:
    """All of License Guard's Azure queues; no network call until a queue is first used.

    In identity mode every queue's client shares `credential` (one token cache, not eight)."""
    return queue_set(lambda name: AzureQueue.from_connection(storage, name, credential=credential))
