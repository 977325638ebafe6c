"""`make demo`'s health page: a live scan of graphsim to out-style files, and the screenshot
when Chromium is installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devhost.report_page import write_demo_report
from devhost.stack import GRAPH_TOKEN, load_tenant
from graphsim.server import serve_in_thread
from tests.render.page import Page


# On the xdist worker that runs the Chromium tests, after them (file order), as in a serial run:
# the screenshot is checked whenever their set-up has installed Chromium.
@pytest.mark.xdist_group("chromium")
@pytest.mark.timeout(300)
def test_the_demo_writes_the_page_of_the_live_tenant_and_its_screenshot(tmp_path: Path) -> None:
    tenant = load_tenant()
    with serve_in_thread(tenant, token=GRAPH_TOKEN) as url:
        html, png = write_demo_report(url, GRAPH_TOKEN, tmp_path)

    [body] = Page(html.read_text(encoding="utf-8")).all("body")
    assert html == tmp_path / "demo-report.html"
    assert body["data-users-scanned"] == str(len(tenant["users"]))
    if shutil.which("chromium") is None:
        assert png is None
    else:
        assert png == tmp_path / "demo-report.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
