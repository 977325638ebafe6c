"""A mail's tables and paragraphs reach Teams, Slack and the webhook: the nightly summary's
findings by issue, seat forecast and configuration drift, the digest's resolved list. The
channels got only the grouped rows, so an admin who reads only Teams never saw who changed a
group's licenses. Within the receivers' limits, a part cut short says how many lines it left
out, and no part crowds out the others."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import orjson
import pytest

from shared.core.nightly_summary import DriftItem, NightlySummary, SeatForecast
from shared.render.alert_mails import nightly_mail
from shared.render.channel_payloads import (
    SLACK_MAX_BLOCKS,
    TEAMS_MAX_BYTES,
    slack_message,
    teams_message,
    webhook_payload,
)
from shared.render.channel_sections import SLACK_MAX_TEXT
from shared.render.mail import MailView, Section, Table
from tests.alerts.test_channels import NOW, REPORT, SCHEMA, row
from tests.alerts.test_teams_card_schema import validator

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"


def summary(drift: int = 2) -> NightlySummary:
    return NightlySummary(
        run_id="night-2026-12-02",
        date="2026-12-02",
        tenant_name="Contoso",
        started_at="2026-12-02T01:00:00Z",
        finished_at="2026-12-02T01:20:00Z",
        users_scanned=23,
        findings_by_code={"CountViolation": 2, "MissingUsageLocation": 1},
        new_findings=1,
        resolved_findings=0,
        seat_forecast=[SeatForecast(E3, "ENTERPRISEPACK", "Office 365 E3", 27, 25, 17)],
        drift=[
            DriftItem(
                "group-gained-sku",
                f"Licensing_E3_{n}",
                f"Office 365 E3 added to the group ({n}), & <b>not</b> escaped by us",
                f"admin{n}@contoso.com",
            )
            for n in range(drift)
        ],
        reprocess_outcomes={"done": 2},
    )


def nightly_view(drift: int = 2) -> MailView:
    view = nightly_mail(mail_id="nightly-1", summary=summary(drift)).view
    assert view is not None
    return view


def webhook(view: MailView, minimum: str = "info") -> dict[str, Any]:
    return webhook_payload(
        digest_id="nightly-1",
        kind="nightly",
        tenant=view.tenant,
        title="t",
        generated_at=NOW.isoformat(),
        findings=[],
        minimum=minimum,
        report_url=REPORT,
        view=view,
    )


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = message["attachments"][0]["content"]
    return card


def texts(items: list[dict[str, Any]]) -> list[str]:
    found = []
    for item in items:
        if item["type"] == "TextBlock":
            found.append(item["text"])
        found += texts(item.get("items", []))
    return found


def test_the_nightly_summary_s_tables_reach_every_channel() -> None:
    view = nightly_view()

    card = texts(card_of(teams_message(view, report_url=REPORT))["body"])
    slack = [
        b["text"]["text"]
        for b in slack_message(view, report_url=REPORT)["blocks"]
        if b["type"] == "section"
    ]

    for shown in ("\n".join(card), "\n".join(slack)):
        for title in ("Findings by issue", "Seat forecast", "Configuration drift"):
            assert title in shown
        assert "CountViolation | 2" in shown
        assert "Office 365 E3 | 27 | 25 | 17" in shown
        assert "group-gained-sku | Licensing_E3_1 |" in shown
        assert "admin1@contoso.com" in shown
        assert "Reprocesses by outcome: done 2." in shown
    assert "&amp; &lt;b&gt;not&lt;/b&gt;" in "\n".join(slack)  # mrkdwn-escaped
    document = webhook(view)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        document
    )
    drift = {s["title"]: s for s in document["sections"]}["Configuration drift"]
    assert drift["table"]["columns"] == ["Change", "Subject", "Detail", "By"]
    assert drift["table"]["rows"][1][3] == "admin1@contoso.com"
    errors = validator("1.4").iter_errors(card_of(teams_message(view, report_url=REPORT)))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []  # Adaptive Card 1.4


def test_the_digest_s_resolved_list_reaches_teams_and_slack_beside_its_rows() -> None:
    resolved = Table(
        ("Issue", "Group", "Product", "Count", "Users"),
        (("CountViolation", "Licensing_E3_9", "Office 365 E3", "2", "Adele, Alex"),),
    )
    view = MailView(
        "License Guard digest",
        "Contoso",
        ("Changes since the last digest.",),
        (
            Section("New issues", items=(row(0),)),
            Section("Resolved since the last digest", table=resolved),
        ),
    )

    card = "\n".join(texts(card_of(teams_message(view))["body"]))
    slack = json.dumps(slack_message(view))

    for shown in (card, slack):
        assert "Licensing_E3_0" in shown  # the new issue's row
        assert "Resolved since the last digest" in shown
        assert "CountViolation | Licensing_E3_9 | Office 365 E3 | 2 | Adele, Alex" in shown
    assert card.index("Licensing_E3_0") < card.index("Resolved since the last digest")


def _left_out(text: str) -> int:
    match = re.search(r"… (\d+) more lines? left out", text)
    assert match, text[-200:]
    return int(match.group(1))


@pytest.mark.parametrize("report_url", [REPORT, None])
def test_long_tables_are_cut_to_the_receivers_limits_and_say_how_much_is_left_out(
    report_url: str | None,
) -> None:
    long = nightly_view(drift=800)
    rows = tuple(row(n) for n in range(300))
    both = MailView(
        long.title, long.tenant, long.lead, (Section("New issues", items=rows), *long.sections)
    )

    teams = teams_message(both, report_url=report_url)
    slack = slack_message(both, report_url=report_url)

    assert len(orjson.dumps(teams)) <= TEAMS_MAX_BYTES
    assert not list(validator("1.4").iter_errors(card_of(teams)))
    body = card_of(teams)["body"]
    [drift] = [
        b for b in body if b["type"] == "Container" and texts([b])[0] == "Configuration drift"
    ]
    drift_lines = [t for t in texts([drift]) if t.startswith("group-gained-sku | ")]
    note = texts([drift])[-1]
    assert 0 < len(drift_lines) < 800
    assert _left_out(note) == 800 - len(drift_lines)
    assert ("the mail or the report page" in note) == bool(report_url)
    shown_rows = [b for b in body if b["type"] == "Container" and "Licensing_E3_" in str(b)]
    assert len(shown_rows) > 0  # the drift does not crowd out the rows, nor they it
    assert "Seat forecast" in texts(body)
    assert any("Office 365 E3 | 27 | 25 | 17" in t for t in texts(body))

    blocks = slack["blocks"]
    assert len(blocks) <= SLACK_MAX_BLOCKS
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(text) <= SLACK_MAX_TEXT for text in sections)
    [slack_drift] = [t for t in sections if t.startswith("*Configuration drift*")]
    shown = slack_drift.count("\ngroup-gained-sku | ")
    assert 0 < shown < 800
    assert _left_out(slack_drift) == 800 - shown
    assert any("Office 365 E3 | 27 | 25 | 17" in t for t in sections)
    assert any("more rows left out to fit Slack's 50 blocks" in json.dumps(b) for b in blocks)


def test_a_table_by_severity_lists_only_what_reaches_the_channel_s_minimum() -> None:
    counts = Table(
        ("Severity", "Issue", "Group", "Product", "Count"),
        (
            ("error", "CountViolation", "Licensing_E3", "Office 365 E3", "4"),
            ("info", "NestedGroupMember", "All staff", "-", "1"),
        ),
    )
    view = MailView("License Guard baseline", "Contoso", (), (Section("Existing", table=counts),))

    card = "\n".join(texts(card_of(teams_message(view, minimum="error"))["body"]))
    slack = json.dumps(slack_message(view, minimum="error"))

    for shown in (card, slack):
        assert "CountViolation" in shown
        assert "NestedGroupMember" not in shown
    [section] = webhook(view, minimum="error")["sections"]
    assert [r[1] for r in section["table"]["rows"]] == ["CountViolation"]
    assert "NestedGroupMember" in json.dumps(webhook(view)["sections"])
