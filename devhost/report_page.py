"""`make demo`'s health page: `license-guard report html --live` against the running graphsim
(the CLI, run as an operator would), written to out/demo-report.html, and a screenshot
(out/demo-report.png) taken by headless Chromium when it is installed (`apt-get install
chromium`; the browser test installs it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def render_live_report(graph_url: str, token: str, html: Path) -> None:
    """`python -m shared report html --live` against `graph_url`, into `html`."""
    done = subprocess.run(  # noqa: S603 - our own arguments
        [
            sys.executable,
            "-m",
            "shared",
            "report",
            "html",
            "--live",
            "--graph-base-url",
            graph_url,
            "--token",
            token,
            "--quiet",
            "--out",
            str(html),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"license-guard report html --live failed: {done.stderr.strip()}")


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
    render_live_report(graph_url, token, html)
    png = out / "demo-report.png"
    return html, png if screenshot(html, png) else None
