"""How Graph writes the values the service reads: timestamps, license-processing states and
a SKU's prepaid units.

One place for both, because Graph's forms surprise: timestamps carry up to seven fractional
digits (``datetime`` takes six) and end in ``Z``; ``licenseProcessingState`` is a string on
v1.0 groups but an object with ``state`` in newer schema and in PowerShell output.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from shared.core.model import PrepaidUnits


def parse_graph_time(value: str) -> datetime:
    """A Graph timestamp as an aware UTC-based datetime; naive text is taken as UTC.

    Raises ValueError for text that is not ISO 8601."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Graph sends up to 7 fractional digits; datetime takes 6
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def graph_time_or_none(value: object) -> datetime | None:
    """`parse_graph_time`, or None for anything that is not a timestamp (absent, malformed)."""
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return parse_graph_time(value)
    return None


def format_graph_time(moment: datetime) -> str:
    """The form Graph's `$filter` and our records use: UTC, seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def processing_state(value: object) -> str | None:
    """A group's ``licenseProcessingState``: a string, or an object with ``state``."""
    if isinstance(value, dict):
        value = value.get("state")
    return str(value) if value else None


def prepaid_units_document(units: PrepaidUnits) -> dict[str, int]:
    """A SKU's seats by stage in Graph's form (subscribedSku.prepaidUnits)."""
    return {
        "enabled": units.enabled,
        "suspended": units.suspended,
        "warning": units.warning,
        "lockedOut": units.locked_out,
    }
