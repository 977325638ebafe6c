"""The Teams card against the Adaptive Card schema version it declares (1.4), checked by
Microsoft's own Adaptive Cards renderer (npm `adaptivecards` 3.0.6, which implements schema
1.0-1.6) in headless Chromium: parsing and property validation report no event, and the card
renders: the grouped rows and the section containers (`channel_sections`: the nightly
summary's tables, the digest's resolved list), whole and cut to 28 KB. A card with an element
the schema does not know is reported, so the check can fail.

The official JSON Schema file is not published in a package this machine can reach; the
reference renderer is the schema's executable form (https://adaptivecards.io/explorer/)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.render.channel_payloads import ADAPTIVE_CARD_VERSION, TEAMS_MAX_BYTES, teams_message
from shared.render.mail import MailView, Section, Table
from tests.alerts.test_channel_sections import nightly_view
from tests.alerts.test_channels import REPORT, row, view
from tests.browser.cdp import Page, file_url

ADAPTIVECARDS = "adaptivecards@3.0.6"
MARKDOWN = "markdown-it@14.1.0"
"""What the renderer formats TextBlocks with when the page has it (`window.markdownit`), as
Teams formats them as Markdown: a link written in directory text would become one."""
PARSE = """(card) => {
  const c = new AdaptiveCards.AdaptiveCard();
  const ctx = new AdaptiveCards.SerializationContext();
  c.parse(card, ctx);
  const events = [];
  for (let i = 0; i < ctx.eventCount; i++) { events.push(ctx.getEventAt(i).message); }
  for (const e of c.validateProperties().validationEvents) { events.push(e.message); }
  const element = c.render();
  document.body.appendChild(element);
  const links = Array.from(element.querySelectorAll("a")).map((a) => a.href);
  const bold = Array.from(element.querySelectorAll("b, strong")).map((b) => b.innerText);
  const formats = "em, i, strong, b, h1, h2, h3, h4, h5, h6, ul, ol, li, blockquote, code, "
    + "pre, s, del, hr, table";
  const formatted = Array.from(element.querySelectorAll(formats)).map((e) => e.tagName);
  const blocks = Array.from(element.querySelectorAll(".ac-textBlock")).map((e) => e.innerText);
  return JSON.stringify({version: c.version.toString(), events: events,
                         text: element.innerText, links: links, bold: bold,
                         formatted: formatted, blocks: blocks});
}"""

# One xdist worker runs every Chromium test, in file order: the first installs Chromium with
# apt-get when it is missing (two installs at once would fight over the dpkg lock).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.xdist_group("chromium")]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page with Microsoft's renderer and markdown-it, installed with npm (skipped without
    npm)."""
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
            MARKDOWN,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"npm install {ADAPTIVECARDS} failed: {done.stderr.strip()[-200:]}")
    shutil.copy(root / "node_modules/adaptivecards/dist/adaptivecards.min.js", root / "ac.js")
    shutil.copy(root / "node_modules/markdown-it/dist/markdown-it.min.js", root / "md.js")
    page = root / "index.html"
    page.write_text(
        '<!DOCTYPE html><html><body><script src="md.js"></script>'
        '<script src="ac.js"></script></body></html>'
    )
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


def test_the_section_containers_are_valid_and_show_their_tables(
    browser: Page, harness: Path
) -> None:
    """The nightly summary's tables and paragraphs as containers; a table line with Markdown
    link syntax or HTML from the directory shows as written, not as a link or bold text (the
    page formats Markdown with markdown-it, as Teams does)."""
    nightly = nightly_view()
    phishing = Table(
        ("Change", "Subject", "Detail", "By"),
        (
            (
                "group-renamed",
                "[Sign in](https://phish.example/a)",
                "<https://phish.example/b>",
                "x",
            ),
            ("group-renamed", "Sales", "<b>bold</b> & co", "y"),
        ),
    )
    shown = MailView(
        nightly.title,
        nightly.tenant,
        nightly.lead,
        (*nightly.sections, Section("Configuration drift (more)", table=phishing)),
    )
    card = teams_message(shown, report_url=REPORT)["attachments"][0]["content"]

    result = parse(browser, harness, card)

    assert result["events"] == []
    text = result["text"].replace("\u200b", "")
    for title in ("Findings by issue", "Seat forecast", "Configuration drift"):
        assert title in text
    assert "Issue | Count" in text  # the table's columns
    assert "CountViolation | 2" in text
    assert "Office 365 E3 | 27 | 25 | 17" in text
    assert "group-gained-sku | Licensing_E3_1 |" in text
    assert "Reprocesses by outcome: done 2." in text
    assert text.index("Findings by issue") < text.index("Configuration drift")
    assert "[Sign in](https://phish.example/a) | <https://phish.example/b>" in text
    assert not [link for link in result["links"] if "phish.example" in link]
    assert "<b>bold</b> & co" in text
    assert result["bold"] == []  # "Bolder" is the renderer's CSS; <b> from the directory is text


def test_a_card_cut_to_28_kb_keeps_every_section_valid_and_says_what_it_left_out(
    browser: Page, harness: Path
) -> None:
    """A digest's rows beside a resolved list, and a nightly summary's 800 drift lines: the
    rows and the tables share the card, each cut part ends with its note."""
    resolved = Table(
        ("Issue", "Group", "Product", "Count", "Users"),
        tuple(
            ("CountViolation", f"Licensing_E3_{n}", "Office 365 E3", "2", "Adele, Alex")
            for n in range(400)
        ),
        ("error",) * 400,
    )
    digest = MailView(
        "License Guard digest",
        "Contoso",
        ("Changes since the last digest.",),
        (
            Section("New issues", items=tuple(row(n) for n in range(200))),
            Section("Resolved since the last digest", table=resolved),
        ),
    )
    long = nightly_view(drift=800)

    for shown in (digest, long):
        message = teams_message(shown, report_url=REPORT)
        card = message["attachments"][0]["content"]
        result = parse(browser, harness, card)

        assert len(orjson.dumps(message)) <= TEAMS_MAX_BYTES  # the bytes posted
        assert result["events"] == []
        assert (
            "left out to fit Teams' card size (see the mail or the report page)" in (result["text"])
        )
    text = parse(browser, harness, teams_message(digest)["attachments"][0]["content"])["text"]
    assert "Resolved since the last digest" in text
    assert "CountViolation | Licensing_E3_0 | Office 365 E3 | 2 | Adele, Alex" in text
    assert "Licensing_E3_0 × Office 365 E3" in text  # a new issue's row beside it


MARKDOWN_NAMES = (
    "**VIP**",
    "_Temp_",
    "__Board__",
    "# Finance",
    "- Contractors",
    "+ Interns",
    "1. Staff",
    "2) Managers",
    "> Sales",
    "~~Old~~ Sales",
    "`HR` team",
    "R&amp;D \\*Lab\\*",
    "***",
    "Licensing_E3_0",
)
"""Directory text that Markdown would format: bold, italic, a heading, list items, a quote,
struck out, code, an entity and backslash escapes, a rule; and a name it would not."""


def as_written(shown: str) -> str:
    """The text as an admin reads it: without the zero-width spaces, with the look-alikes
    `∗` and `ˋ` read as `*` and a backtick."""
    return shown.replace("\u200b", "").replace("\u2217", "*").replace("\u02cb", "`")


def test_directory_text_shows_as_written_not_as_markdown(browser: Page, harness: Path) -> None:
    """The tenant name and the "Top groups by errors" lines start with directory text: each
    shows as written, never bold, italic, a heading, list, quote, code or struck out (the
    page formats Markdown with markdown-it, as Teams does)."""
    groups = Table(
        ("Group", "Users in error"), tuple((name, str(n)) for n, name in enumerate(MARKDOWN_NAMES))
    )
    paragraph = "\n".join(MARKDOWN_NAMES[3:9])  # a paragraph of lines that would be a list
    shown = MailView(
        "License Guard nightly summary",
        "**Contoso** _Ltd_",
        ("# Lead",),
        (Section("Top groups by errors", paragraphs=(paragraph,), table=groups),),
    )
    card = teams_message(shown, report_url=REPORT)["attachments"][0]["content"]

    result = parse(browser, harness, card)

    assert result["events"] == []
    assert result["formatted"] == []
    blocks = [as_written(b) for b in result["blocks"]]
    assert "**Contoso** _Ltd_" in blocks
    assert "# Lead" in blocks
    for n, name in enumerate(MARKDOWN_NAMES):
        assert f"{name} | {n}" in blocks
    assert "Licensing_E3_0 | 13" in result["blocks"]  # a name without Markdown is unchanged
