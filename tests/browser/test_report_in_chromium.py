"""The health page in a real browser: headless Chromium over the DevTools protocol renders the
page for the demo tenant and for a 20,000-user graphsim tenant, with no console error, no
network request, charts whose SVG marks carry the evaluation's numbers, working sort and
filter, and a PNG screenshot under out/.

Chromium is Debian's `chromium` package; the set-up installs it with apt-get when it is missing
and that is possible (root, apt-get present), and skips with the reason otherwise.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from graphsim.synthetic import generate_tenant
from shared.adapters.snapshot import parse_snapshot
from shared.catalog.products import catalog
from shared.cli.main import main
from shared.core.evaluate import evaluate
from tests.browser.cdp import Page, file_url
from tests.demo_tenant import DEMO

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out"
MAX_BYTES = 2_000_000

# One xdist worker runs every Chromium test, in file order: the first installs Chromium with
# apt-get when it is missing (two installs at once would fight over the dpkg lock).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("chromium")]


def load(page: Page, path: Path) -> None:
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.call(f"{domain}.enable")
    page.events.clear()
    page.call("Page.navigate", url=file_url(path))
    page.wait_for("Page.loadEventFired")
    page.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")


def problems(page: Page, path: Path) -> dict[str, list[Any]]:
    """Console messages, exceptions, error log entries, and requests other than the page."""
    return {
        "console": [(c["type"], c.get("args")) for c in page.of("Runtime.consoleAPICalled")],
        "exceptions": page.of("Runtime.exceptionThrown"),
        "log": [
            e["entry"]["text"] for e in page.of("Log.entryAdded") if e["entry"]["level"] == "error"
        ],
        "requests": [
            r["request"]["url"]
            for r in page.of("Network.requestWillBeSent")
            if r["request"]["url"] != file_url(path)
        ],
    }


def screenshot(page: Page, name: str, height: int = 3000) -> Path:
    metrics = page.call("Page.getLayoutMetrics")
    full = int(metrics["cssContentSize"]["height"])
    shot = page.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": min(full, height), "scale": 1},
    )
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


BARS = """JSON.stringify(Array.from(document.querySelectorAll(
  'svg[data-chart="seats"] rect[data-series]')).map(r => [r.dataset.category, r.dataset.series,
  Number(r.dataset.value), r.getBBox().width]))"""


def expected_seats(snapshot: Path) -> dict[tuple[str, str], int]:
    """What the core says, independently of the page's builder. The same file, read with orjson
    (`load_snapshot`'s stdlib parser takes seconds longer on the 20k-user file), parsed and
    validated as `load_snapshot` does."""
    document = orjson.loads(snapshot.read_bytes())
    tenant = parse_snapshot(document, consume=True, complete=True).tenant
    names = catalog()
    out: dict[tuple[str, str], int] = {}
    for report in evaluate(tenant).skus:
        sku = report.sku
        values = {"demand": report.demand, "prepaid": sku.prepaid.enabled, "consumed": sku.consumed}
        if any(values.values()):
            product = names.product(sku.id, sku.part_number)
            out.update({(product, series): v for series, v in values.items()})
    return out


def check_page(page: Page, html: Path, snapshot: Path) -> list[list[Any]]:
    load(page, html)
    assert problems(page, html) == {"console": [], "exceptions": [], "log": [], "requests": []}
    bars = json.loads(page.evaluate(BARS))
    assert {(c, s): v for c, s, v, _ in bars} == expected_seats(snapshot)
    widest = max(bars, key=lambda b: b[2])
    assert all(w <= widest[3] + 0.01 for *_, w in bars)
    assert all((w > 0) == (v > 0) for _, _, v, w in bars)
    assert page.evaluate("document.querySelector('svg[data-chart=seats]').getBBox().height") > 50
    return bars


def history(directory: Path, snapshot: Path) -> Path:
    """Three stored nights, so the trend charts have lines; the first was stored without
    consumed units (a gap at the start of that line)."""
    directory.mkdir()
    for n, date in enumerate(("2026-11-29", "2026-11-30", "2026-12-01")):
        seats = {"sku_id": "e3", "product_name": "Office 365 E3", "demand": 18 + n}
        doc = {
            "date": date,
            "findings_by_code": {"CountViolation": 2 + n, "Other": 4 - n},
            "seat_forecast": [
                {**seats, "prepaid_enabled": 25, **({"consumed": 15 + n} if n else {})}
            ],
        }
        (directory / f"{date}.json").write_text(json.dumps(doc))
    return directory


def test_the_demo_page_in_chromium(browser: Page, tmp_path: Path) -> None:
    html = OUT / "report-demo.html"
    OUT.mkdir(exist_ok=True)
    nights = history(tmp_path / "history", DEMO)
    args = ["report", "html", "--snapshot", str(DEMO), "--history", str(nights), "--out", str(html)]
    assert main(args) == 0

    check_page(browser, html, DEMO)

    lines = json.loads(
        browser.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('polyline[data-series]'))"
            ".map(p => [p.dataset.series, p.dataset.values, p.getTotalLength()]))"
        )
    )
    assert ["CountViolation", "2,3,4"] in [line[:2] for line in lines]
    assert ["Office 365 E3 prepaid", "25,25,25"] in [line[:2] for line in lines]
    assert ["Office 365 E3 consumed", ",16,17"] in [line[:2] for line in lines]
    assert all(length > 0 for *_, length in lines)
    labelled = browser.evaluate(
        "Array.from(document.querySelectorAll('svg.chart')).every(s => s.getAttribute('role') "
        "=== 'img' && s.querySelector('title').textContent.length > 0)"
    )
    assert labelled is True

    # the code filter hides the other codes' rows
    shown = browser.evaluate(
        """(() => { const f = document.getElementById('code-filter');
        f.value = 'CountViolation'; f.dispatchEvent(new Event('change'));
        return Array.from(document.querySelectorAll('tr[data-code]')).filter(r => !r.hidden)
          .map(r => r.dataset.code); })()"""
    )
    assert shown
    assert set(shown) == {"CountViolation"}
    # the status counts the findings shown, not the code's own row in the codes table too
    status = browser.evaluate("document.getElementById('filter-status').textContent")
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings-table tbody tr'))"
        ".filter(r => !r.hidden).length"
    )
    assert rows == len(shown) - 1
    assert status == f"{rows} finding{'' if rows == 1 else 's'} shown for CountViolation"
    # sorting by a numeric column, twice: ascending then descending
    order = browser.evaluate(
        """(() => { const b = Array.from(document.querySelectorAll('#codes-table th button'))
          .find(x => x.textContent === 'Findings');
        const f = document.getElementById('code-filter');
        f.value = ''; f.dispatchEvent(new Event('change')); b.click(); b.click();
        return [b.parentElement.getAttribute('aria-sort'), Array.from(document.querySelectorAll(
          '#codes-table tbody tr')).map(r => Number(r.cells[2].textContent))]; })()"""
    )
    assert order[0] == "descending"
    assert order[1] == sorted(order[1], reverse=True)
    assert problems(browser, html)["console"] == []

    png = screenshot(browser, "report-demo.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_a_20k_user_graphsim_tenant_in_chromium(browser: Page, tmp_path: Path) -> None:
    snapshot = tmp_path / "tenant-20k.json"
    snapshot.write_bytes(orjson.dumps(generate_tenant(users=20_000, groups=40, skus=20, seed=7)))
    html = OUT / "report-20k.html"
    OUT.mkdir(exist_ok=True)
    assert main(["report", "html", "--snapshot", str(snapshot), "--out", str(html)]) == 0
    size = html.stat().st_size

    bars = check_page(browser, html, snapshot)

    users = browser.evaluate("document.body.dataset.usersScanned")
    rows = browser.evaluate("document.querySelectorAll('#findings-table tbody tr').length")
    assert users == "20000"
    assert size < MAX_BYTES
    assert (
        0
        < rows
        <= 50 * browser.evaluate("document.querySelectorAll('#codes-table tbody tr').length")
    )
    assert len(bars) >= 3
    png = screenshot(browser, "report-20k.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (OUT / "report-20k.txt").write_text(f"{html.name}: {size} bytes for 20,000 users\n")
    sys.stderr.write(f"\n{html}: {size:,} bytes for 20,000 users; screenshot {png}\n")


def test_the_checks_see_a_request_the_page_would_make(browser: Page, tmp_path: Path) -> None:
    """The harness can fail: a page that tries to load an image gets caught, by the CSP error
    in the log or by the request itself."""
    html = tmp_path / "leaky.html"
    assert main(["report", "html", "--snapshot", str(DEMO), "--out", str(html)]) == 0
    text = html.read_text()
    html.write_text(text.replace("<main>", '<main><img src="http://127.0.0.1:9/x.png" alt="">', 1))

    load(browser, html)
    found = problems(browser, html)

    assert found["log"] or found["requests"]
    assert any("Content Security Policy" in t for t in found["log"])
