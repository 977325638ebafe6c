"""A mail over Graph's request size is cut to fit, tables too. Only the grouped rows were cut:
a nightly summary with thousands of configuration drift lines (and no rows at all) stayed
over the limit, Graph refused its draft (413) at every retry and the summary never went out.
And the limit counted characters, so a mail of names in Chinese (three UTF-8 bytes each)
under it could still be refused."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.core.nightly_summary import DriftItem
from shared.fakes.mailbox import MAX_REQUEST_BYTES
from shared.platform.channel_config import parse_channels
from shared.render.alert_mails import nightly_mail
from shared.render.mail import MailView, Section, Table, mime_base64, render
from shared.service.alerts.channels import payload_for
from shared.service.alerts.summaries import send_nightly_summary
from tests.alerts.mail import html, mails
from tests.alerts.test_channels import row
from tests.alerts.test_immediate import NIGHT
from tests.alerts.world import alert_world

pytestmark = pytest.mark.anyio

AT = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def drift(n: int, name: str = "Licensing_E3_{n}", detail: str = "") -> list[DriftItem]:
    return [
        DriftItem(
            "group-gained-sku",
            name.format(n=k),
            detail or f"Office 365 E3 added to the group ({k}); disabled plans: " + "x, " * 60,
            f"admin{k}@contoso.com",
        )
        for k in range(n)
    ]


def left_out(text: str) -> int:
    match = re.search(r"… (\d+) more rows: see the report page", text)
    assert match, "no note on the rows left out"
    return int(match.group(1))


async def test_a_nightly_summary_with_thousands_of_drift_lines_is_sent_cut_to_fit() -> None:
    world = alert_world()
    summary = replace(NIGHT, drift=drift(6000))

    delivery = await send_nightly_summary(world.svc, summary)

    assert delivery is not None
    assert delivery.accepted
    [mail] = mails(world)
    body = html(mail)
    shown = body.count("group-gained-sku")
    assert 0 < shown < 6000
    assert left_out(body) == 6000 - shown
    # the short tables beside it are whole: the drift did not crowd them out
    assert "CountViolation" in body
    assert "MissingUsageLocation" in body
    assert "Office 365 E3" in body
    assert "Reprocesses by outcome: done 2." in body


def test_long_tables_and_rows_share_the_room_and_each_says_what_it_left_out() -> None:
    rows = tuple(row(n) for n in range(3000))
    long_table = Table(
        ("Change", "Subject"), tuple((f"change {n}", "x" * 400) for n in range(6000))
    )
    short = Table(("Issue", "Count"), (("CountViolation", "2"),))
    view = MailView(
        "License Guard nightly summary",
        "Contoso",
        ("Lead.",),
        (
            Section("New issues", items=rows),
            Section("Configuration drift", table=long_table),
            Section("Findings by issue", table=short),
        ),
    )

    mail = render(view, mail_id="m-1", kind="nightly", subject="s")

    assert len(mime_base64(mail, "a@contoso.com", ["b@contoso.com"], AT)) <= MAX_REQUEST_BYTES
    assert mail.view is not None
    new, changes, counts = mail.view.sections
    assert changes.table is not None
    assert 0 < len(changes.table.rows) < 6000
    assert 0 < len(new.items) < 3000  # neither part crowds out the other
    assert left_out(mail.text) == 6000 - len(changes.table.rows)
    assert f"{3000 - len(new.items)} more lines left out" in mail.text
    assert counts == view.sections[2]  # short enough to keep whole, and no note
    assert "CountViolation | 2" in mail.text


def test_a_mail_of_names_in_chinese_is_measured_in_bytes_not_characters() -> None:
    name = "许可证组" * 62  # a group name near Entra's 256 characters
    # whole: 976,111 characters (under the old limit of 1,000,000 characters, so nothing was
    # cut), 8.7 MB as Graph gets it: the HTML part is quoted-printable, nine bytes a character
    summary = replace(NIGHT, drift=drift(680, name=name + "{n}", detail=name))
    mail = nightly_mail(mail_id="nightly-1", summary=summary)

    assert len(mime_base64(mail, "a@contoso.com", ["b@contoso.com"], AT)) <= MAX_REQUEST_BYTES
    shown = mail.text.count("group-gained-sku")
    assert left_out(mail.text) == 680 - shown


def test_the_webhook_still_gets_the_tables_uncut() -> None:
    """The webhook's `sections` are documented as uncut (docs/alert-channels.md): what the
    mail left out to fit Graph's size still reaches it; Teams gets the cut view."""
    mail = nightly_mail(mail_id="nightly-1", summary=replace(NIGHT, drift=drift(6000)))
    [webhook, teams] = parse_channels(
        '[{"type": "webhook", "urlSecretName": "U", "minSeverity": "info"},'
        ' {"type": "teams", "urlSecretName": "U", "minSeverity": "info"}]'
    )

    document = payload_for(mail, webhook, None, AT.isoformat(), {})
    card = payload_for(mail, teams, None, AT.isoformat(), {})

    assert document is not None
    assert card is not None
    [changes] = [s for s in document["sections"] if s["title"] == "Configuration drift"]
    assert len(changes["table"]["rows"]) == 6000
    assert "more rows: see the report page" not in json.dumps(changes)
    assert "more rows: see the report page" in json.dumps(card)  # the mail's note
