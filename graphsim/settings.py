"""Settings the /_sim control API sets and reports by camelCase JSON key (faults, throttle,
notifications): each is a dataclass field that names its key once, so what `configure` reads and
what `describe` reports cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Parse = Callable[[Any], Any]
_SETTING = "graphsim.setting"


def setting(key: str, parse: Parse, **field_args: Any) -> Any:
    """A dataclass field set from `key` (the JSON value through `parse`) and reported as `key`;
    `field_args` as for `dataclasses.field` (its default)."""
    return field(metadata={_SETTING: (key, parse)}, **field_args)


def apply_settings(target: DataclassInstance, cfg: Mapping[str, Any]) -> None:
    """Set, in field order, each setting whose key `cfg` holds; the others keep their value."""
    for name, key, parse in _settings(target):
        if key in cfg:
            setattr(target, name, parse(cfg[key]))


def current_settings(target: DataclassInstance) -> dict[str, Any]:
    """Every setting's current value under its key, in field order."""
    return {key: getattr(target, name) for name, key, _ in _settings(target)}


def _settings(target: DataclassInstance) -> Iterator[tuple[str, str, Parse]]:
    for f in fields(target):
        if _SETTING in f.metadata:
            key, parse = f.metadata[_SETTING]
            yield f.name, key, parse
