"""The licensing health report as plain data: what the health page shows, and nothing else.

`render.health_builder` fills it a page of users at a time; the page
(`shared.render.health_page`) only formats what is here. Tables keep at most `ROWS_PER_CODE`
rows per finding code, so the page says "showing 50 of 4,512" instead of growing with the
tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.core.model import seat_shortfall

ROWS_PER_CODE = 50
"""Finding rows kept per code; the page shows how many more there are."""
MAX_GROUPS = 500
HEALTH_KEYS = ("error", "stale", "pending")
"""The headline counts: users with an error, with a stale or with a pending assignment."""


@dataclass(frozen=True, slots=True)
class Count:
    label: str
    value: int
    previous: int | None = None

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.value - self.previous


@dataclass(frozen=True, slots=True)
class CodeCount:
    code: str
    severity: str
    findings: int
    users: int
    previous: int | None = None
    """Findings with this code in the previous night's summary."""

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.findings - self.previous


@dataclass(frozen=True, slots=True)
class FindingRow:
    code: str
    severity: str
    subject: str
    """'user', 'group' or 'product'."""
    subject_id: str
    name: str
    upn: str
    product: str
    group_id: str
    group_name: str
    message: str
    remedy: str = ""
    """What to do about it (the finding's `remedy`), when the finding says."""


@dataclass(frozen=True, slots=True)
class ProductRow:
    sku_id: str
    part_number: str
    product: str
    demand: int
    prepaid: int
    warning: int
    suspended: int
    locked_out: int
    consumed: int
    waiting: int
    """Users with a CountViolation for this product: waiting for a seat."""
    redundant_direct: int
    price: float | None = None

    @property
    def shortfall(self) -> int:
        return seat_shortfall(self.demand, self.prepaid)

    @property
    def at_risk(self) -> bool:
        return bool(self.warning or self.suspended or self.locked_out)

    @property
    def shortfall_cost(self) -> float | None:
        return None if self.price is None else self.shortfall * self.price

    @property
    def redundant_cost(self) -> float | None:
        return None if self.price is None else self.redundant_direct * self.price


@dataclass(frozen=True, slots=True)
class DriftRow:
    kind: str
    subject: str
    detail: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    group_id: str
    name: str
    products: tuple[str, ...]
    disabled_plans: tuple[str, ...]
    """'PRODUCT: PLAN, PLAN' per product with disabled plans."""
    members: int
    errors: int
    processing_state: str
    dynamic: bool
    synced: bool
    drift: tuple[DriftRow, ...] = ()


@dataclass(frozen=True, slots=True)
class MigrationRow:
    kind: str
    """'safe', 'not-yet', 'would-lose' or 'direct-only'."""
    user_id: str
    name: str
    upn: str
    product: str
    detail: str


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: tuple[int | None, ...]
    """One value per night; None where the night has no value (a gap in the line)."""
    line: str = "solid"
    """`solid`, `dashed` or `dotted`: lines told apart without their colour."""
    colour: int | None = None
    """Palette index shared by related lines (one product's seats); None: its position."""


@dataclass(frozen=True, slots=True)
class Trends:
    dates: tuple[str, ...] = ()
    by_code: tuple[Series, ...] = ()
    seats: tuple[Series, ...] = ()


@dataclass(frozen=True, slots=True)
class Migration:
    counts: dict[str, int] = field(default_factory=dict)
    rows: tuple[MigrationRow, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthReport:
    tenant: str
    generated_at: str
    source: str
    users_scanned: int
    compared_with: str | None
    """The date of the night the changes are counted from, if any."""
    health: tuple[Count, ...]
    codes: tuple[CodeCount, ...]
    findings: tuple[FindingRow, ...]
    findings_total: int
    products: tuple[ProductRow, ...]
    groups: tuple[GroupRow, ...]
    groups_total: int
    drift_date: str | None
    drift_other: tuple[DriftRow, ...]
    """Drift not about a listed group (products, groups that lost all licenses)."""
    migration: Migration
    trends: Trends
    rows_per_code: int
    priced: bool
