"""The Teams card against the Adaptive Card schema version it declares (1.4), checked by
Microsoft's own Adaptive Cards renderer (npm `adaptivecards` 3.0.6, which implements schema
1.0-1.6) in headless Chromium: parsing and property validation report no event, and the card
renders. A card with an element the schema does not know is reported, so the check can fail.

The official JSON Schema file is not published in a package this machine can reach; the
reference renderer is the schema's executable form (https://adaptivecards.io/explorer/)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.render.channel_payloads import ADAPTIVE_CARD_VERSION, teams_message
from tests.alerts.test_channels import REPORT, view
from tests.browser.cdp import Page, file_url

ADAPTIVECARDS = "adaptivecards@3.0.6"
PARSE = """(card) => {
  const c = new AdaptiveCards.AdaptiveCard();
  const ctx = new AdaptiveCards.SerializationContext();
  c.parse(card, ctx);
  const events = [];
  for (let i = 0; i < ctx.eventCount; i++) { events.push(ctx.getEventAt(i).message); }
  for (const e of c.validateProperties().validationEvents) { events.push(e.message); }
  const element = c.render();
  document.body.appendChild(element);
  return JSON.stringify({version: c.version.toString(), events: events,
                         text: element.innerText});
}"""

# One xdist worker runs every Chromium test, in file order: the first installs Chromium with
# apt-get when it is missing (two installs at once would fight over the dpkg lock).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.xdist_group("chromium")]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page with Microsoft's renderer, installed with npm (skipped without npm)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not available: cannot install the Adaptive Cards renderer")
    root = tmp_path_factory.mktemp("adaptivecards")
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(root),
            ADAPTIVECARDS,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"npm install {ADAPTIVECARDS} failed: {done.stderr.strip()[-200:]}")
    shutil.copy(root / "node_modules/adaptivecards/dist/adaptivecards.min.js", root / "ac.js")
    page = root / "index.html"
    page.write_text('<!DOCTYPE html><html><body><script src="ac.js"></script></body></html>')
    return page


def parse(browser: Page, harness: Path, card: dict[str, Any]) -> dict[str, Any]:
    browser.call("Page.enable")
    browser.events.clear()
    browser.call("Page.navigate", url=file_url(harness))
    browser.wait_for("Page.loadEventFired")
    result: dict[str, Any] = json.loads(browser.evaluate(f"({PARSE})({json.dumps(card)})"))
    return result


def test_the_teams_card_is_valid_for_the_version_it_declares(browser: Page, harness: Path) -> None:
    for rows in (3, 500):  # a full card and one cut to 28 KB
        card = teams_message(view(rows), report_url=REPORT)["attachments"][0]["content"]

        result = parse(browser, harness, card)

        assert card["version"] == ADAPTIVE_CARD_VERSION
        assert result["version"] == ADAPTIVE_CARD_VERSION
        assert result["events"] == []
        assert "Licensing_E3_0" in result["text"]


def test_the_check_reports_what_the_schema_does_not_know(browser: Page, harness: Path) -> None:
    card = teams_message(view(1), report_url=REPORT)["attachments"][0]["content"]
    card["body"].append({"type": "Bogus"})

    result = parse(browser, harness, card)

    assert any("Unknown element type" in e for e in result["events"])
