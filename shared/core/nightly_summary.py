"""What a nightly reconciliation found and did: the contract between the reconciliation (which
fills it) and the alerts (which mail it). Plain data, JSON-ready, stored beside the reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shared.core.model import seat_shortfall


@dataclass(frozen=True, slots=True)
class SeatForecast:
    sku_id: str
    sku_part_number: str
    product_name: str
    demand: int
    """Users who would take a seat of the product (`SkuReport.demand`)."""
    prepaid_enabled: int
    consumed: int
    """Units assigned (subscribedSku.consumedUnits): the report's seat trend plots it; a
    history record without it is a gap in that line, not an error."""

    @property
    def shortfall(self) -> int:
        return seat_shortfall(self.demand, self.prepaid_enabled)


@dataclass(frozen=True, slots=True)
class GroupErrors:
    group_id: str
    group_name: str
    errors: int
    """Users with a Graph-reported assignment error from this group."""


@dataclass(frozen=True, slots=True)
class DriftItem:
    kind: str
    """e.g. group-licenses-changed, group-gained-sku, group-lost-sku, dynamic-rule-changed,
    new-service-plan, prepaid-units-changed."""
    subject: str
    """The group or SKU it is about (display name / part number)."""
    detail: str
    """One plain sentence."""
    actor: str | None = None
    """Who did it, from the directory audit log, when known."""


@dataclass(frozen=True, slots=True)
class NightlySummary:
    run_id: str
    date: str
    """The UTC date of the run (YYYY-MM-DD): one summary email per date."""
    tenant_name: str
    started_at: str
    finished_at: str
    users_scanned: int
    findings_by_code: dict[str, int]
    new_findings: int
    resolved_findings: int
    top_groups_by_errors: list[GroupErrors] = field(default_factory=list)
    seat_forecast: list[SeatForecast] = field(default_factory=list)
    drift: list[DriftItem] = field(default_factory=list)
    data_loss_risks: int = 0
    self_check_agreement: float | None = None
    """Share (0..1) of users where the core's verdict agrees with Entra's own error signals."""
    self_check_disagreements: int = 0
    reprocess_outcomes: dict[str, int] = field(default_factory=dict)
    """What the service did since the last summary, by outcome (called, gone, braked, …)."""
    baseline: bool = False
    """The first reconciliation after install (or a BASELINE reset): everything is recorded,
    nothing reprocessed, and the mail says "baseline: N existing issues"."""
    report_blobs: list[str] = field(default_factory=list)
    """Blob names of the night's reports (paths CSV/JSON, config snapshot and diff, migration
    plan, self-check); never attached to mail."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NightlySummary:
        """The summary `to_json` wrote (a run's summary.json): an owed mail is sent from it.
        Keys this version does not know are left behind."""
        known = {f.name for f in fields(cls)}
        return cls(
            **{
                **{k: v for k, v in data.items() if k in known},
                "top_groups_by_errors": [
                    GroupErrors(**g) for g in data.get("top_groups_by_errors", ())
                ],
                "seat_forecast": [SeatForecast(**s) for s in data.get("seat_forecast", ())],
                "drift": [DriftItem(**d) for d in data.get("drift", ())],
            }
        )
