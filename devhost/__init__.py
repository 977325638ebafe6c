"""Runs the function app locally from its own binding metadata (no Core Tools here).

`DevHost` (in `devhost.host`) serves HTTP triggers, polls queue triggers and fires timers;
`python -m devhost` is its command line. Importing this package has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devhost.host import DevHost, Invocation

__all__ = ["DevHost", "Invocation"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from devhost import host  # noqa: PLC0415 - lazy: `devhost.azurite` users skip the web stack

        return getattr(host, name)
    raise AttributeError(name)
