"""`make demo`'s health page: `license-guard report html --live` against the running graphsim,
written to out/demo-report.html, and a screenshot (out/demo-report.png) taken by headless
Chromium when it is installed (`apt-get install chromium`; the browser test installs it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.render.health_model import HealthReport
from shared.render.health_page import render_health_page
from shared.service.reconcile.health_report import live_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def scan(graph_url: str, token: str) -> HealthReport:
    async def job() -> HealthReport:
        directory = GraphDirectory(build_graph_client(graph_url, static_token=token))
        try:
            return await live_report(directory, now=datetime.now(UTC))
        finally:
            await directory.aclose()

    return asyncio.run(job())


def screenshot(html: Path, png: Path, height: int = 3000) -> bool:
    """A PNG of the page's top `height` pixels; False when no Chromium is installed."""
    binary = next((b for name in CHROMIUM_NAMES if (b := shutil.which(name))), None)
    if binary is None:
        return False
    png.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 - our own arguments
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            f"--window-size=1280,{height}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return png.exists()


def write_demo_report(graph_url: str, token: str, out: Path) -> tuple[Path, Path | None]:
    out.mkdir(exist_ok=True)
    html = out / "demo-report.html"
    html.write_text(render_health_page(scan(graph_url, token)), encoding="utf-8")
    png = out / "demo-report.png"
    return html, png if screenshot(html, png) else None
