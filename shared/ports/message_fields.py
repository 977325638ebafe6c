"""Field checks for `shared.ports.messages`: each raises `MessageError` naming the field.

Used by the messages' ``__post_init__``; a value that passes is normalised where it says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

MAX_TEXT = 1024


class MessageError(ValueError):
    """A message is malformed or invalid; the text names the type and field at fault."""


def _wrong_type(where: str, expected: str, value: object) -> MessageError:
    return MessageError(f"{where}: expected {expected}, got {type(value).__name__}")


def _items(where: str, value: object, of: str) -> enumerate[object]:
    """The numbered items of a JSON list (a tuple once decoded into a message)."""
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise _wrong_type(where, f"a list of {of}", value)
    return enumerate(value)


_P = TypeVar("_P")


def _parsed(
    where: str, value: object, parse: Callable[[str], _P], kind: str, form: str
) -> tuple[str, _P]:
    """`value`, a string in `form` ("a GUID"), and what `parse` reads in it; `kind` is what
    the value should have been when it is no string at all ("a GUID string")."""
    if not isinstance(value, str):
        raise _wrong_type(where, kind, value)
    try:
        return value, parse(value)
    except ValueError:
        raise MessageError(f"{where}: {value!r} is not {form}") from None


def check_guid(where: str, value: object) -> str:
    given, parsed = _parsed(where, value, uuid.UUID, "a GUID string", "a GUID")
    text = str(parsed)
    if text != given.lower():  # uuid.UUID also accepts braces, urn: and no hyphens
        raise MessageError(f"{where}: {value!r} is not a GUID in 8-4-4-4-12 form")
    return text


def check_guids(
    where: str, value: object, *, minimum: int, maximum: int | None = None
) -> tuple[str, ...]:
    ids = tuple(check_guid(f"{where}[{i}]", item) for i, item in _items(where, value, "GUIDs"))
    if len(ids) < minimum:
        raise MessageError(f"{where}: expected at least {minimum} id(s), got {len(ids)}")
    if maximum is not None and len(ids) > maximum:
        raise MessageError(f"{where}: at most {maximum} ids per message, got {len(ids)}")
    return ids


def check_text(where: str, value: object, *, maximum: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise _wrong_type(where, "a string", value)
    if not value.strip():
        raise MessageError(f"{where}: must not be empty")
    if len(value) > maximum:
        raise MessageError(f"{where}: longer than {maximum} characters")
    return value


def check_printable(where: str, value: object, *, maximum: int) -> str:
    text = check_text(where, value, maximum=maximum)
    if not text.isprintable():
        raise MessageError(f"{where}: must be printable text without control characters")
    return text


def check_texts(where: str, value: object) -> tuple[str, ...]:
    return tuple(check_text(f"{where}[{i}]", item) for i, item in _items(where, value, "strings"))


def check_timestamp(where: str, value: object, *, utc: bool = False) -> str:
    given, parsed = _parsed(
        where, value, datetime.fromisoformat, "an ISO 8601 string", "an ISO 8601 timestamp"
    )
    offset = parsed.utcoffset()
    if offset is None:
        raise MessageError(f"{where}: {value!r} has no time zone (add Z for UTC)")
    if utc and offset != timedelta(0):
        raise MessageError(f"{where}: {value!r} must be in UTC (Z or +00:00)")
    return given


def check_version(where: str, value: object) -> int:
    if type(value) is not int or value != 1:
        raise MessageError(f"{where}: unsupported version {value!r} (this build reads 1)")
    return value


def set_normalised(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # frozen dataclass: normalise in __post_init__
