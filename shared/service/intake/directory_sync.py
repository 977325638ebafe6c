"""The on-premises sync trigger over HTTPS: vet a posted `SyncCompleted` and queue it.

The storage account has shared-key access off, so the sync server cannot put a message on the
``sync-completed`` queue with a SAS. It POSTs the same JSON to ``/api/directory/sync-completed``
with its own function key instead. The body is decoded exactly as the queue trigger decodes a
queue message (`shared.ports.messages.decode_message`) and, once valid, enqueued on
``sync-completed``, where the queue trigger takes over: one code path after the door. A crash
before the enqueue leaves the sender without a 202, so it retries; a crash after it is
harmless, the message is durable. A repeated ``completedAt`` is ignored by the queue path.

Bad input raises `SyncRejected` with the HTTP status and a short code for the JSON error body;
nothing here raises on input it was given.
"""

from __future__ import annotations

from typing import Final

import structlog

from shared.ports.messages import MessageError, SyncCompleted, decode_message
from shared.service.services import Services

log = structlog.get_logger(__name__)

MAX_SYNC_BODY_BYTES: Final = 16 * 1024
"""A SyncCompleted is ~250 bytes; the slack is for optional fields a newer sender may add."""
JSON_MEDIA_TYPE: Final = "application/json"


class SyncRejected(ValueError):
    """The request cannot be accepted; `status` and `code` go into the JSON error answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _check_content_type(content_type: str | None) -> None:
    media, _, parameters = (content_type or "").partition(";")
    if media.strip().lower() != JSON_MEDIA_TYPE:
        raise SyncRejected(
            415,
            "unsupported_media_type",
            f"Content-Type must be {JSON_MEDIA_TYPE}, got {content_type or 'none'!r}",
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise SyncRejected(
                415, "unsupported_media_type", f"charset must be utf-8, got {value.strip()!r}"
            )


def vet_sync_completed(svc: Services, body: bytes, content_type: str | None) -> SyncCompleted:
    """The posted message, validated as the queue trigger validates it, for our tenant only."""
    _check_content_type(content_type)
    if len(body) > MAX_SYNC_BODY_BYTES:
        raise SyncRejected(
            413, "too_large", f"body is {len(body)} bytes, at most {MAX_SYNC_BODY_BYTES} allowed"
        )
    try:
        message = decode_message(body)
    except MessageError as error:
        raise SyncRejected(400, "invalid_message", str(error)) from None
    if not isinstance(message, SyncCompleted):
        raise SyncRejected(
            400, "invalid_message", f"expected SyncCompleted, got {type(message).__name__}"
        )
    if message.tenant_id != svc.settings.tenant_id.lower():
        # The queue path drops such a message with a warning; here the sender can be told.
        log.warning("sync.foreign_tenant", tenant_id=message.tenant_id)
        raise SyncRejected(
            422, "foreign_tenant", f"tenantId {message.tenant_id} is not this deployment's tenant"
        )
    return message


def accept_sync_completed(svc: Services, body: bytes, content_type: str | None) -> SyncCompleted:
    """Vet the POST and enqueue it on ``sync-completed``; the queue trigger does the rest."""
    message = vet_sync_completed(svc, body, content_type)
    svc.send(message)
    log.info(
        "sync.accepted_over_http",
        correlation_id=message.correlation_id,
        completed_at=message.completed_at,
        source=message.source,
    )
    return message
