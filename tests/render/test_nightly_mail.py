"""The nightly summary mail's text: the seat forecast lists what an admin can act on, and
counts read as English ("1 user", not "1 users")."""

from __future__ import annotations

from dataclasses import replace

from shared.core.nightly_summary import NightlySummary, SeatForecast
from shared.render.alert_mails import nightly_mail
from shared.render.mail import MailView, Section

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
E1 = "18181a46-0d4e-45cd-891e-60aabd171b4e"
FREE = "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235"
TRIAL = "f30db892-07e9-47e9-837c-80727f46fd3d"

NIGHT = NightlySummary(
    run_id="night-2026-12-02",
    date="2026-12-02",
    tenant_name="Contoso",
    started_at="2026-12-02T01:00:00Z",
    finished_at="2026-12-02T01:20:00Z",
    users_scanned=23,
    findings_by_code={"CountViolation": 2},
    new_findings=1,
    resolved_findings=0,
    seat_forecast=[
        SeatForecast(E3, "ENTERPRISEPACK", "Office 365 E3", 27, 25, 17),
        SeatForecast(FREE, "POWER_BI_STANDARD", "Power BI (free)", 0, 0, 0),
        SeatForecast(E1, "STANDARDPACK", "Office 365 E1", 0, 2, 0),
        SeatForecast(TRIAL, "FLOW_FREE", "Power Automate Free", 0, 0, 0),
    ],
)


def view(summary: NightlySummary = NIGHT) -> MailView:
    mail = nightly_mail(mail_id="nightly-1", summary=summary).view
    assert mail is not None
    return mail


def forecast(mail: MailView) -> Section:
    (section,) = [s for s in mail.sections if s.title == "Seat forecast"]
    return section


def test_the_seat_forecast_leaves_out_products_with_no_demand_seats_or_use() -> None:
    """Like the health page's seat chart: a row of zeros (a free or expired product nobody
    holds) tells the admin nothing; a product with seats and no demand still shows."""
    section = forecast(view())

    assert section.table is not None
    assert [row[0] for row in section.table.rows] == ["Office 365 E3", "Office 365 E1"]
    assert section.paragraphs == (
        "Not listed: 2 products with no demand, no enabled seats and none consumed.",
    )


def test_a_forecast_without_rows_of_zeros_says_nothing_left_out() -> None:
    section = forecast(view(replace(NIGHT, seat_forecast=NIGHT.seat_forecast[:1])))

    assert section.paragraphs == ()


def test_a_forecast_of_only_zeros_says_so_without_a_table() -> None:
    section = forecast(view(replace(NIGHT, seat_forecast=[NIGHT.seat_forecast[1]])))

    assert section.table is None
    assert section.paragraphs == (
        "Not listed: 1 product with no demand, no enabled seats and none consumed.",
    )
