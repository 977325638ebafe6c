"""Whether a channel gets a post at all is decided on what it would show, the same for Teams,
Slack and the webhook. Teams and Slack looked only at the grouped rows: a digest whose new
rows were all below the channel's minSeverity was not posted even with a resolved list (the
webhook posted it), and a baseline whose counts were all below it posted a card whose table
showed only its column headings (the webhook, given no findings, posted it too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from shared.core.alerting import LedgerRow
from shared.platform.channel_config import Channel, parse_channels
from shared.render.alert_mails import baseline_mail, digest_mail, weekly_mail
from shared.render.mail import Mail, MailNames
from shared.service.alerts.channels import payload_for
from tests.alerts.test_channel_sections import nightly_view
from tests.alerts.test_channels import REPORT, SCHEMA

SEEN = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
NAMES = MailNames(tenant_name="Contoso", groups={}, products={E3: "Office 365 E3"})


def ledger_row(n: int, code: str, severity: str, *, resolved: bool = False) -> LedgerRow:
    group = f"11111111-0000-4000-8000-{n:012d}"
    user = f"00000000-0000-4000-8000-{n:012d}"
    return LedgerRow(
        key=f"user:{user}|{E3}|{code}|{group}",
        subject=f"user:{user}",
        code=code,
        severity=severity,
        sku_id=E3,
        group_id=group,
        message="m",
        remedy="r",
        first_seen=SEEN,
        resolved_at=SEEN if resolved else None,
    )


def channels(minimum: str) -> list[Channel]:
    return parse_channels(
        json.dumps(
            [
                {"type": kind, "urlSecretName": "URL", "minSeverity": minimum}
                for kind in ("teams", "slack", "webhook")
            ]
        )
    )


def posts(mail: Mail, minimum: str) -> dict[str, dict[str, Any] | None]:
    return {c.type: payload_for(mail, c, REPORT, SEEN.isoformat(), {}) for c in channels(minimum)}


def digest(new: list[LedgerRow], resolved: list[LedgerRow]) -> Mail:
    return digest_mail(
        mail_id="digest-1",
        names=NAMES,
        new=new,
        resolved=resolved,
        still_open=0,
        waiting={},
        muted=0,
        actions={},
        mode_note="Report mode.",
        since=None,
    )


def test_a_digest_whose_new_rows_are_below_the_minimum_still_posts_its_resolved_list() -> None:
    mail = digest(
        [ledger_row(1, "NestedGroupMember", "info")],
        [ledger_row(2, "CountViolation", "error", resolved=True)],
    )

    sent = posts(mail, "error")

    assert all(payload is not None for payload in sent.values()), sent
    for kind in ("teams", "slack"):
        shown = json.dumps(sent[kind])
        assert "Resolved since the last digest" in shown
        assert "CountViolation" in shown
        assert "NestedGroupMember" not in shown  # the new row below the minimum
    webhook = sent["webhook"]
    assert webhook is not None
    assert [f["status"] for f in webhook["findings"]] == ["resolved"]


def test_a_resolved_list_below_the_minimum_is_no_post_and_lines_below_it_are_left_out() -> None:
    below = digest(
        [ledger_row(1, "NestedGroupMember", "info")],
        [ledger_row(2, "MissingUsageLocation", "warning", resolved=True)],
    )
    assert posts(below, "error") == dict.fromkeys(("teams", "slack", "webhook"))

    both = digest(
        [ledger_row(1, "CountViolation", "error")],
        [
            ledger_row(2, "MissingUsageLocation", "warning", resolved=True),
            ledger_row(3, "DependencyViolation", "error", resolved=True),
        ],
    )
    for payload in posts(both, "error").values():
        shown = json.dumps(payload)
        assert "DependencyViolation" in shown
        assert "MissingUsageLocation" not in shown
    assert "MissingUsageLocation" in json.dumps(posts(both, "warning"))


def test_a_baseline_whose_counts_are_all_below_the_minimum_is_no_post() -> None:
    mail = baseline_mail(
        mail_id="baseline-1",
        names=NAMES,
        rows=[ledger_row(1, "NestedGroupMember", "info"), ledger_row(2, "NoUsageLocation", "info")],
    )

    assert posts(mail, "warning") == dict.fromkeys(("teams", "slack", "webhook"))
    for payload in posts(mail, "info").values():
        assert "NestedGroupMember" in json.dumps(payload)


@pytest.mark.parametrize("minimum", ["info", "error"])
def test_an_alert_without_severities_is_posted_when_it_has_something_to_show(
    minimum: str,
) -> None:
    view = nightly_view()
    mail = Mail("nightly-1", "nightly", "Nightly summary", "", "", view=view)

    sent = posts(mail, minimum)

    assert all(payload is not None for payload in sent.values())
    assert all("Configuration drift" in json.dumps(p) for p in sent.values())


def test_the_weekly_summary_lists_its_standing_findings_on_the_webhook() -> None:
    """The weekly mail gave the webhook none of its findings: a document with no findings
    and no sections, while Teams and Slack showed every standing finding."""
    rows = [ledger_row(1, "NestedGroupMember", "info"), ledger_row(2, "NoUsageLocation", "info")]
    mail = weekly_mail(mail_id="weekly-2026-W49", names=NAMES, rows=rows, week="2026-W49")

    webhook = posts(mail, "info")["webhook"]

    assert webhook is not None
    jsonschema.validate(webhook, SCHEMA)
    assert webhook["kind"] == "weekly"
    assert [(f["code"], f["status"]) for f in webhook["findings"]] == [
        ("NestedGroupMember", "open"),
        ("NoUsageLocation", "open"),
    ]
    assert webhook["findings"][0]["product"]["name"] == "Office 365 E3"
    assert posts(mail, "warning") == dict.fromkeys(("teams", "slack", "webhook"))


def test_a_resolved_list_all_below_the_minimum_is_left_out_not_shown_as_its_headings() -> None:
    """New errors and a resolved list of warnings, to an error channel: the post showed the
    resolved list's title and column headings over no line."""
    mail = digest(
        [ledger_row(1, "CountViolation", "error")],
        [ledger_row(2, "MissingUsageLocation", "warning", resolved=True)],
    )

    sent = posts(mail, "error")

    for kind, payload in sent.items():
        assert payload is not None, kind
        shown = json.dumps(payload)
        assert "CountViolation" in shown, kind
        assert "Resolved since the last digest" not in shown, kind
    assert "Resolved since the last digest" in json.dumps(posts(mail, "warning"))
