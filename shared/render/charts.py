"""Inline SVG charts for the report page: grouped horizontal bars and multi-series lines.

No script, no external fonts: presentation attributes only (a strict Content-Security-Policy
allows them, and they print). Every chart is `role="img"` labelled by its `<title>` and
`<desc>`, every mark carries its numbers as data attributes (`data-series`, `data-category`,
`data-value`, `data-values`) and a `<title>` tooltip, and the page shows the same numbers in a
table next to it, so nothing is only in the picture. Colours are the Okabe-Ito palette (safe
for colour-blind readers); lines are also told apart by dashes and the legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from markupsafe import Markup, escape

from shared.render.health_model import Series
from shared.render.terminal_text import printable

PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES: Final = {"solid": "", "dashed": "5 3", "dotted": "1.5 2.5"}


def _text(value: str) -> Markup:
    """A label escaped, its control characters written out (`shared.render.health_page`)."""
    return escape(printable(value))


def _nice_max(value: float) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def _frame(kind: str, title: str, desc: str, width: int, height: int) -> tuple[str, list[str]]:
    n = f"-{kind}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="chart{n}-t chart{n}-d" data-chart="{_text(kind)}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">'
    )
    parts = [
        head,
        f'<title id="chart{n}-t">{_text(title)}</title>',
        f'<desc id="chart{n}-d">{_text(desc)}</desc>',
    ]
    return f"chart{n}", parts


def bar_chart(
    kind: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> Markup:
    """One group of horizontal bars per category, one bar per series (values[i] for
    categories[i])."""
    label_w, bar_w, bar_h, gap, top = 230, 430, 9, 10, 24
    group_h = bar_h * len(series) + gap
    height = top + group_h * len(categories) + 24
    width = label_w + bar_w + 60
    scale = _nice_max(max((v for _, vals in series for v in vals), default=0))
    _, parts = _frame(kind, title, desc, width, height)
    # legend
    x = label_w
    for i, (name, _) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="13" font-size="11">{_text(name)}</text>')
        x += 14 + 8 * len(name) + 16
    for tick in (0, scale // 2, scale):
        tx = label_w + bar_w * tick / scale
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 20}" '
            f'stroke="#bbb" stroke-width="0.5"/>'
            f'<text x="{tx:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
            f"{tick}</text>"
        )
    for c, category in enumerate(categories):
        y0 = top + c * group_h
        label = category if len(category) <= 34 else category[:33] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" '
            f'font-size="11" text-anchor="end">{_text(label)}</text>'
        )
        for i, (name, values) in enumerate(series):
            value = int(values[c])
            w = bar_w * value / scale
            y = y0 + i * bar_h
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" '
                f'fill="{PALETTE[i % len(PALETTE)]}" data-series="{_text(name)}" '
                f'data-category="{_text(category)}" data-value="{value}">'
                f"<title>{_text(category)}: {_text(name)} {value}</title></rect>"
            )
            parts.append(
                f'<text x="{label_w + w + 3:.1f}" y="{y + bar_h - 1}" font-size="9">{value}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped


def line_chart(
    kind: str, title: str, desc: str, dates: Sequence[str], series: Sequence[Series]
) -> Markup:
    """One polyline per series over the dates; a missing night (None) breaks the line."""
    left, width, height, top, bottom = 48, 560, 200, 10, 36
    legend_h = 16 * len(series)
    total_h = top + height + bottom + legend_h
    values = [v for s in series for v in s.values if v is not None]
    scale = _nice_max(max(values, default=0))
    n = max(len(dates) - 1, 1)
    _, parts = _frame(kind, title, desc, left + width + 20, total_h)

    def px(i: int) -> float:
        return left + width * i / n

    def py(v: int) -> float:
        return top + height - height * v / scale

    for tick in (0, scale // 2, scale):
        parts.append(
            f'<line x1="{left}" y1="{py(tick):.1f}" x2="{left + width}" y2="{py(tick):.1f}" '
            f'stroke="#bbb" stroke-width="0.5"/>'
            f'<text x="{left - 4}" y="{py(tick) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{tick}</text>"
        )
    for i in sorted({0, len(dates) // 2, len(dates) - 1}):
        if 0 <= i < len(dates):
            parts.append(
                f'<text x="{px(i):.1f}" y="{top + height + 14}" font-size="10" '
                f'text-anchor="middle">{_text(dates[i])}</text>'
            )
    for k, s in enumerate(series):
        colour = PALETTE[(k if s.colour is None else s.colour) % len(PALETTE)]
        dash = f' stroke-dasharray="{DASHES[s.line]}"' if DASHES[s.line] else ""
        segments: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{px(i):.1f},{py(v):.1f}")
        data = ",".join("" if v is None else str(v) for v in s.values)
        for points in (seg for seg in segments if seg):
            if len(points) == 1:
                x, y = points[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash} data-series="{_text(s.label)}" data-values="{data}">'
                f"<title>{_text(s.label)}</title></polyline>"
            )
        ly = top + height + bottom + 16 * k
        parts.append(
            f'<line x1="{left}" y1="{ly - 4}" x2="{left + 22}" y2="{ly - 4}" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{left + 28}" y="{ly}" font-size="11">'
            f"{_text(s.label)} (last: {_text(_last(s.values))})</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped


def _last(values: Sequence[int | None]) -> str:
    for v in reversed(values):
        if v is not None:
            return str(v)
    return "none"
