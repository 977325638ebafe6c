"""The nightly history behind the report's trends and its "change since last night".

Each finished reconciliation keeps a small record per UTC date in the reports container,
``nightly-history/<date>.json``: the `NightlySummary` JSON plus the page's headline counts
(``health``: users in error, stale, pending). The run's own reports under ``nightly/`` are
pruned after REPORT_RETENTION_DAYS; these records are kept for `HISTORY_DAYS` so a 90-night
trend exists. The command line reads the same records from storage (``--from-storage``) or
summary JSON files from a directory (``--history DIR``: ``summary.json`` files as the nightly
run writes them are fine, and a downloaded ``nightly/`` folder: its other files are skipped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from shared.render.health_model import Series, Trends

HISTORY_PREFIX: Final = "nightly-history/"
HISTORY_DAYS: Final = 100
"""Records older than this are deleted (the trend shows the last `TREND_NIGHTS`)."""
TREND_NIGHTS: Final = 90
TOP_SERIES: Final = 8
SEAT_LINES: Final = (("demand", "solid"), ("prepaid", "dashed"), ("consumed", "dotted"))
"""The seat trend's lines per product (`TOP_SERIES // 2` products), told apart by dashes."""
SeatNight = tuple[int, int, int | None]
"""One product's demand, prepaid (enabled) and consumed units on one night."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HistoryError(ValueError):
    """A history file is not a nightly summary: names the file and what is wrong."""


def history_name(date: str) -> str:
    return f"{HISTORY_PREFIX}{date}.json"


def history_record(summary: Mapping[str, Any], health: Mapping[str, int]) -> dict[str, Any]:
    """What one night leaves for the trends: the summary and the headline counts."""
    return {**summary, "health": dict(health)}


def check_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise HistoryError(f"{where}: not a JSON object")
    date = record.get("date")
    if not isinstance(date, str) or not _DATE.match(date):
        raise HistoryError(f"{where}: 'date' must be YYYY-MM-DD")
    counts = record.get("findings_by_code")
    if not isinstance(counts, dict) or not all(
        v is not None and _count_or_none(v) for v in counts.values()
    ):
        raise HistoryError(
            f"{where}: 'findings_by_code' must map codes to counts (integers from 0)"
        )
    seats = record.get("seat_forecast", [])
    if not isinstance(seats, list) or not all(isinstance(s, dict) for s in seats):
        raise HistoryError(f"{where}: 'seat_forecast' must be a list of objects")
    for seat in seats:
        for key in ("demand", "prepaid_enabled", "consumed"):
            if not _count_or_none(seat.get(key)):
                raise HistoryError(
                    f"{where}: 'seat_forecast' {key!r} must be a count (an integer from 0)"
                )
    health = record.get("health") or {}
    if not isinstance(health, dict) or not all(
        isinstance(n, int) and _count_or_none(n) for n in health.values()
    ):
        raise HistoryError(f"{where}: 'health' must map names to counts (integers from 0)")
    drift = record.get("drift") or []
    if not isinstance(drift, list) or not all(isinstance(d, dict) for d in drift):
        raise HistoryError(f"{where}: 'drift' must be a list of objects")
    return record


def _count_or_none(value: Any) -> bool:
    """What the trends and the page take for a count: an integer from 0, or nothing (a gap)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


@dataclass(frozen=True, slots=True)
class HistoryDir:
    """The nightly summaries under a directory, and why each other ``*.json`` was skipped."""

    records: list[dict[str, Any]]
    skipped: list[str]


def load_history_dir(directory: str | Path) -> HistoryDir:
    """The nightly summaries among the ``*.json`` under `directory` (recursively): a whole
    downloaded ``nightly/`` folder holds the run's other reports too, which are skipped.
    HistoryError when there are JSON files but none is a summary."""
    root = Path(directory)
    if not root.is_dir():
        raise HistoryError(f"--history: {directory} is not a directory")
    records, skipped = [], []
    for path in sorted(root.rglob("*.json")):
        try:
            records.append(check_record(orjson.loads(path.read_bytes()), str(path)))
        except orjson.JSONDecodeError as exc:
            skipped.append(f"{path}: not JSON ({exc})")
        except HistoryError as exc:
            skipped.append(str(exc))
    if skipped and not records:
        raise HistoryError(
            f"--history: no nightly summary under {directory}; {len(skipped)} JSON file(s), "
            f"the first: {skipped[0]}"
        )
    return HistoryDir(records, skipped)


def load_history_blobs(blobs: Any) -> list[dict[str, Any]]:
    """The records in the reports container; an unreadable one is skipped, not fatal."""
    records = []
    for name in blobs.list(HISTORY_PREFIX):
        raw = blobs.get(name)
        try:
            records.append(check_record(orjson.loads(raw or b"null"), name))
        except (HistoryError, orjson.JSONDecodeError):
            continue
    return records


def nights(
    records: Iterable[Mapping[str, Any]], until: str | None = None, limit: int = TREND_NIGHTS
) -> list[Mapping[str, Any]]:
    """One record per date (the latest finished), oldest first, the last `limit` up to
    `until` (inclusive)."""
    by_date: dict[str, Mapping[str, Any]] = {}
    for record in records:
        date = str(record["date"])
        if until is not None and date > until:
            continue
        kept = by_date.get(date)
        if kept is None or str(record.get("finished_at") or "") >= str(
            kept.get("finished_at") or ""
        ):
            by_date[date] = record
    return [by_date[d] for d in sorted(by_date)][-limit:]


def previous_night(records: Sequence[Mapping[str, Any]], before: str) -> Mapping[str, Any] | None:
    """The latest record dated strictly before `before`."""
    earlier = [r for r in records if str(r["date"]) < before]
    return earlier[-1] if earlier else None


def trends(records: Sequence[Mapping[str, Any]]) -> Trends:
    """Findings by code and seats per product (demand solid, prepaid dashed, consumed dotted),
    night by night; the `TOP_SERIES` codes and the products with the highest peaks."""
    if not records:
        return Trends()
    dates = tuple(str(r["date"]) for r in records)
    peaks: dict[str, int] = {}
    for record in records:
        for code, n in record["findings_by_code"].items():
            peaks[code] = max(peaks.get(code, 0), int(n))
    codes = sorted(peaks, key=lambda c: (-peaks[c], c))[:TOP_SERIES]
    by_code = tuple(
        Series(code, tuple(int(r["findings_by_code"].get(code, 0)) for r in records))
        for code in codes
    )
    seats: dict[str, dict[str, SeatNight]] = {}
    labels: dict[str, str] = {}
    for record in records:
        for s in record.get("seat_forecast") or ():
            sku = str(s.get("sku_id") or s.get("sku_part_number") or "")
            labels[sku] = str(s.get("product_name") or s.get("sku_part_number") or sku)
            seats.setdefault(sku, {})[str(record["date"])] = _seat_night(s)
    top = sorted(seats, key=lambda k: (-max(n[0] for n in seats[k].values()), labels[k]))
    series: list[Series] = []
    for colour, sku in enumerate(top[: TOP_SERIES // 2]):
        points = [seats[sku].get(d) for d in dates]
        for i, (measure, line) in enumerate(SEAT_LINES):
            values = tuple(p[i] if p else None for p in points)
            if any(v is not None for v in values):  # consumed: not in summaries before it was
                series.append(Series(f"{labels[sku]} {measure}", values, line, colour))
    return Trends(dates, by_code, tuple(series))


def _seat_night(forecast: Mapping[str, Any]) -> SeatNight:
    """A stored `SeatForecast`; one stored before it carried `consumed` has None (a gap)."""
    consumed = forecast.get("consumed")
    return (
        int(forecast.get("demand") or 0),
        int(forecast.get("prepaid_enabled") or 0),
        consumed if isinstance(consumed, int) and not isinstance(consumed, bool) else None,
    )
