"""One user's reprocess ledger read by cause: what was tried, observed, and when.

The policy asks the ledger whether a cause was already reprocessed, whether its evidence
changed, and since when a gate (free seats, group processing) was last closed. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from shared.core.graph_values import graph_time_or_none
from shared.core.reprocess_plan import Attempt, Cause


class Ledger:
    """One user's entries by cause key, oldest first."""

    def __init__(self, entries: Sequence[Attempt]) -> None:
        # Ties in time are broken by content, so the caller's order never matters.
        ordered = sorted(entries, key=lambda e: (e.at, e.reprocessed, e.cause.evidence))
        self._by_key: dict[str, list[Attempt]] = defaultdict(list)
        for entry in ordered:
            self._by_key[entry.cause.key].append(entry)

    def entries(self, key: str) -> list[Attempt]:
        return self._by_key.get(key, [])

    def latest(self, key: str) -> Attempt | None:
        entries = self.entries(key)
        return entries[-1] if entries else None

    def attempts(self, key: str) -> list[Attempt]:
        return [e for e in self.entries(key) if e.reprocessed]

    def closed_since(self, key: str, open_token: str) -> str:
        """`after=<T>`: the latest entry of the key recorded while the gate was closed."""
        closed = [e for e in self.entries(key) if e.cause.evidence[:1] != (open_token,)]
        return f"after={closed[-1].at.isoformat()}" if closed else "after=none"

    def unchanged_for(self, cause: Cause, now: datetime) -> timedelta:
        """How long the key's latest entries have had this cause's evidence (0: they have not):
        a closed gate's wait so far, from its first recorded sighting."""
        since = now
        for entry in reversed(self.entries(cause.key)):
            if entry.cause.evidence != cause.evidence:
                break
            since = min(since, entry.at)
        return now - since


def since_key(since: str | None) -> tuple[int, datetime]:
    """Sort key for Graph's lastUpdatedDateTime: oldest first, unknown (or unreadable) last."""
    moment = graph_time_or_none(since)
    return (0, moment) if moment else (1, datetime.min.replace(tzinfo=UTC))


def needs_record(ledger: Ledger, cause: Cause) -> bool:
    """Whether the ledger must record this cause: its key is new or its evidence changed."""
    latest = ledger.latest(cause.key)
    return latest is None or latest.cause.evidence != cause.evidence
