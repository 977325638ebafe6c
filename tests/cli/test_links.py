"""Links to the fix: every finding in the CLI table, the JSON, the path CSV and the alert mail
carries the admin-center page where it is fixed (one module: shared/core/links.py)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from shared.cli.main import main
from shared.core.alerting import LedgerRow
from shared.core.links import PRODUCTS_URL, finding_url, group_license_url, user_license_url
from shared.render import alert_mails
from shared.render import mail as compose
from shared.render.paths import CSV_HEADER
from tests.csv_files import csv_records
from tests.demo_tenant import DEMO, EMS_E3

USER = "6b1e1d8e-0000-4000-8000-000000000001"


def test_the_url_forms() -> None:
    assert user_license_url(USER) == (
        f"https://admin.microsoft.com/#/users/:/UserDetails/{USER}/LicensesAndApps"
    )
    assert group_license_url(EMS_E3) == (
        "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/"
        f"groupId/{EMS_E3}"
    )
    assert finding_url(f"group:{EMS_E3}") == group_license_url(EMS_E3)
    assert finding_url("sku:x") == PRODUCTS_URL
    assert finding_url(USER) == user_license_url(USER)
    assert "/" not in user_license_url("a/b").split("UserDetails/")[1].split("/")[0]


@pytest.mark.parametrize(
    ("user_id", "segment"),
    [
        (USER, USER),  # a GUID: as it is
        (f" {USER}\n", USER),
        ("a b", "a%20b"),
        ("x/%", "x%2F%25"),
        ("caf\u00e9", "caf%C3%A9"),
        ("\u00b2-1", "%C2%B2-1"),  # alphanumeric, not ASCII
        ("---", "---"),
        ("a_b.c~d", "a_b.c~d"),
        ("", ""),
    ],
)
def test_an_id_is_percent_encoded_but_for_unreserved_characters(user_id: str, segment: str) -> None:
    assert user_license_url(user_id) == (
        f"https://admin.microsoft.com/#/users/:/UserDetails/{segment}/LicensesAndApps"
    )


def test_every_json_finding_has_its_link(capsys: pytest.CaptureFixture[str]) -> None:
    main(["evaluate", "--snapshot", str(DEMO), "--format", "json"])
    document = json.loads(capsys.readouterr().out)

    for user in document["users"]:
        for finding in user["findings"]:
            assert finding["link"] == user_license_url(user["id"])
            if finding["groupId"]:
                assert finding["groupLink"] == group_license_url(finding["groupId"])
    for group in document["groups"]:
        for finding in group["findings"]:
            assert finding["link"] == group_license_url(group["id"])
    ems = next(s for s in document["skus"] if s["skuPartNumber"] == "EMS")
    assert ems["findings"][0]["link"] == PRODUCTS_URL


def test_the_table_shows_where_each_finding_is_fixed(capsys: pytest.CaptureFixture[str]) -> None:
    main(["evaluate", "--snapshot", str(DEMO)])
    out = capsys.readouterr().out

    assert f"group: {group_license_url(EMS_E3)}" in out
    assert "at:  https://admin.microsoft.com/#/users/:/UserDetails/" in out


def test_the_path_csv_has_the_user_and_group_pages(capsys: pytest.CaptureFixture[str]) -> None:
    main(["evaluate", "--snapshot", str(DEMO), "--format", "csv"])
    rows = csv_records(capsys.readouterr().out)

    assert tuple(rows[0]) == CSV_HEADER
    for row in rows:
        assert row["userLicensesUrl"] == user_license_url(row["userId"])
        assert row["groupUrl"] == (group_license_url(row["groupId"]) if row["groupId"] else "")


def ledger_row(
    code: str,
    severity: str,
    message: str,
    remedy: str,
    *,
    sku_id: str | None = None,
    group_id: str | None = None,
) -> LedgerRow:
    """An open finding about USER as the alerts read it from the ledger."""
    return LedgerRow(
        key=f"{USER}|{sku_id or '-'}|{code}|{group_id or '-'}",
        subject=USER,
        code=code,
        severity=severity,
        sku_id=sku_id,
        group_id=group_id,
        message=message,
        remedy=remedy,
        first_seen=datetime(2026, 1, 1),  # noqa: DTZ001 - a ledger value, not the clock
    )


def test_the_mail_links_the_group_and_each_user() -> None:
    row = ledger_row(
        "CountViolation",
        "error",
        "Diego does not have EMS: no free seats were left.",
        "Buy seats.",
        sku_id="x",
        group_id=EMS_E3,
    )
    names = compose.MailNames(
        "Contoso", {USER: compose.UserName("Diego", "diego@contoso.com")}, {EMS_E3: "EMS group"}
    )

    mail = alert_mails.digest_mail(
        mail_id="digest-1", names=names, new=[row], resolved=[], still_open=0, waiting={},
        muted=0, actions={}, mode_note="Mode: observe.", since=None,
    )  # fmt: skip

    assert f"Fix it here: {group_license_url(EMS_E3)}" in mail.text
    assert f"Diego <diego@contoso.com> {user_license_url(USER)}" in mail.text
    assert f'<a href="{group_license_url(EMS_E3)}"' in mail.html
    assert f'<a href="{user_license_url(USER)}"' in mail.html
    assert "Changes since License Guard started watching: 1 new issue" in mail.text


def test_the_example_is_left_out_when_it_would_repeat_the_cause() -> None:
    row = ledger_row(
        "LicensedDisabledAccount",
        "info",
        "Diego's account is disabled but still holds a license.",
        "Remove the license.",
    )
    names = compose.MailNames("Contoso", {USER: compose.UserName("Diego", "d@contoso.com")})

    mail = alert_mails.digest_mail(
        mail_id="d", names=names, new=[row], resolved=[], still_open=0, waiting={},
        muted=0, actions={}, mode_note="", since="2026-01-01 08:00 UTC",
    )  # fmt: skip

    assert mail.text.count("Diego's account is disabled") == 1
    assert "Example:" not in mail.text
    assert "Changes since the last digest (2026-01-01 08:00 UTC)" in mail.text
    assert f"Fix it here: {user_license_url(USER)}" in mail.text
