"""Shared by the queue-triggered handlers: decode a queue message into the expected type."""

from __future__ import annotations

from typing import TypeVar, overload

import azure.functions as func

from shared.ports.messages import Message, MessageError, decode_message

A = TypeVar("A", bound=Message)
B = TypeVar("B", bound=Message)


@overload
def decode_as(msg: func.QueueMessage, first: type[A]) -> A: ...
@overload
def decode_as(msg: func.QueueMessage, first: type[A], second: type[B]) -> A | B: ...
def decode_as(
    msg: func.QueueMessage, first: type[object], second: type[object] | None = None
) -> Message:
    """The typed message, or MessageError: after maxDequeueCount tries it lands in -poison,
    where the poison watch reports it."""
    expected = (first,) if second is None else (first, second)
    message = decode_message(msg.get_body())
    if not isinstance(message, expected):
        names = ", ".join(t.__name__ for t in expected)
        raise MessageError(f"expected {names} on this queue, got {type(message).__name__}")
    return message
