"""The fields of a snapshot's JSON objects, read or refused with one line naming the object
and the field (`SnapshotError`), so the CLI can print it without a traceback."""

from __future__ import annotations

from typing import Any


class SnapshotError(ValueError):
    """The snapshot cannot be evaluated; the message names the object and field."""


def expect_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SnapshotError(f"{where}: expected an object")
    return value


def required_text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise SnapshotError(f"{where}: missing required field '{key}'")
    return value


def required_list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise SnapshotError(f"{where}: missing required list '{key}'")
    return value


def whole_number(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise SnapshotError(f"{where}: '{key}' must be a whole number")
    return value
