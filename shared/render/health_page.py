"""The licensing health report as one self-contained HTML page.

Inline CSS and SVG, a few lines of inline script for sorting and filtering, nothing fetched:
the page carries a Content-Security-Policy of ``default-src 'none'`` with the exact hashes of
its own style and script, so a browser refuses any request the page might otherwise make. It
reads offline and as a mail attachment, prints (``@media print``), and stays small whatever
the tenant's size because the tables are capped (`shared.render.health_model`).

Everything from the directory is escaped by Jinja2's autoescape, its control characters
written out (`_visible`); the charts do both for their own labels (`shared.render.charts`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from shared.core import links
from shared.core.findings import SEVERITY_ORDER
from shared.core.wording import counted
from shared.render.charts import bar_chart, line_chart
from shared.render.health_model import HealthReport
from shared.render.terminal_text import printable

TEMPLATES: Final = Path(__file__).parent / "templates"
MIGRATION_KINDS: Final = (
    ("safe", "safe to remove"),
    ("not-yet", "not yet (a group path is not active)"),
    ("would-lose", "would lose plans"),
    ("direct-only", "held only directly"),
)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    env.globals.update(
        user_url=links.entra_user_url,
        user_licenses_url=links.user_license_url,
        group_url=links.group_license_url,
        products_url=links.SUBSCRIPTIONS_URL,
        licenses_url=links.PRODUCTS_URL,
        change=_change,
        money=_money,
        migration_kinds=MIGRATION_KINDS,
        kind_label=dict(MIGRATION_KINDS),
        severity_rank=lambda severity: SEVERITY_ORDER.get(severity, len(SEVERITY_ORDER)),
    )
    return env


def _visible(value: Any) -> Any:
    """Directory text with its control characters written out (`\\u202e`), as in the
    terminal tables: a bidirectional override in a group's name would reorder the rest of the
    line (whose change it was), and invisible characters make two names look alike. Our own
    markup (style, script, charts) is `Markup` and passes as it is."""
    return printable(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@cache
def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def content_security_policy(css: str, js: str) -> str:
    """Nothing may load; only this page's own style and script run."""
    return (
        f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def _change(value: int | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "no change"
    return f"+{value}" if value > 0 else f"−{-value}"


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def render_health_page(report: HealthReport) -> str:
    css, js = _asset("health.css"), _asset("health.js")
    shown = [p for p in report.products if p.demand or p.prepaid or p.consumed]
    seats = bar_chart(
        "seats",
        "Seats per product: demand, prepaid and consumed",
        f"{counted(len(shown), 'product')}; "
        + "; ".join(
            f"{p.product}: demand {p.demand}, prepaid {p.prepaid}, consumed {p.consumed}"
            for p in shown[:20]
        ),
        [p.product for p in shown],
        [
            ("demand", [p.demand for p in shown]),
            ("prepaid", [p.prepaid for p in shown]),
            ("consumed", [p.consumed for p in shown]),
        ],
    )
    trends = report.trends
    context: dict[str, Any] = {
        "r": report,
        "css": Markup(css),  # noqa: S704 - our own file, hashed into the CSP
        "js": Markup(js),  # noqa: S704 - our own file, hashed into the CSP
        "csp": content_security_policy(css, js),
        "seats_chart": seats,
        "codes_chart": line_chart(
            "code-trend",
            "Findings by code, night by night",
            f"{counted(len(trends.by_code), 'code')} over {counted(len(trends.dates), 'night')}",
            trends.dates,
            trends.by_code,
        ),
        "seats_trend_chart": line_chart(
            "seat-trend",
            "Seats per product, night by night: demand (solid), prepaid (dashed) and consumed "
            "(dotted)",
            f"{counted(len({s.colour for s in trends.seats}), 'product')} over "
            f"{counted(len(trends.dates), 'night')}; a gap is a night with no stored value",
            trends.dates,
            trends.seats,
        ),
    }
    return _environment().get_template("health.html.j2").render(context)
