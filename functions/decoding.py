"""Shared by the queue-triggered handlers: decode a queue message into the expected type."""

from __future__ import annotations

from typing import TypeVar, overload

import azure.functions as func
import orjson

from shared.platform.logging import get_logger
from shared.ports.messages import Message, MessageError, decode_message

A = TypeVar("A", bound=Message)
B = TypeVar("B", bound=Message)

log = get_logger(__name__)


@overload
def decode_as(msg: func.QueueMessage, first: type[A]) -> A: ...
@overload
def decode_as(msg: func.QueueMessage, first: type[A], second: type[B]) -> A | B: ...
def decode_as(
    msg: func.QueueMessage, first: type[object], second: type[object] | None = None
) -> Message:
    """The typed message, or MessageError: after maxDequeueCount tries it lands in -poison,
    where the poison watch reports it. Each try is logged (`queue.message_failed`) under the
    message's correlation id when it has one, as a failed job is."""
    expected = (first,) if second is None else (first, second)
    body = msg.get_body()
    try:
        message = decode_message(body)
        if not isinstance(message, expected):
            names = ", ".join(t.__name__ for t in expected)
            raise MessageError(f"expected {names} on this queue, got {type(message).__name__}")
    except MessageError as exc:
        from shared.bootstrap import logging_ready  # noqa: PLC0415 - on first use

        logging_ready()  # a new worker's first message: no services (nor logging) set up yet
        log.error("queue.message_failed", error=f"MessageError: {exc}", **_said(body))
        raise
    return message


def _said(body: bytes) -> dict[str, str]:
    """What an unreadable message says of itself, if it is a JSON object: its correlation id
    and type (clipped), so the poison runbook's search by correlationId finds its failures."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    said = {"correlation_id": parsed.get("correlationId"), "message_type": parsed.get("type")}
    return {key: value[:128] for key, value in said.items() if isinstance(value, str) and value}
