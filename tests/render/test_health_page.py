"""The health page from a snapshot: self-contained, escaped, linked, capped, with charts whose
numbers are the evaluation's."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from typing import Any

import pytest

from shared.adapters.snapshot import load_snapshot, parse_snapshot
from shared.core import links
from shared.core.evaluate import evaluate
from shared.render.health_builder import HealthBuilder
from shared.render.health_page import render_health_page
from shared.render.health_sources import report_from_snapshot
from shared.render.history import nights, previous_night, trends
from tests.builders import BASE, E3, E3_SKU_ID, TEAMS, seed_tenant
from tests.demo_tenant import DEMO
from tests.render.page import Page

NOW = "2026-12-02T06:00:00+00:00"


def demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def render(document: dict[str, Any] | None = None, **kwargs: Any) -> tuple[str, Any]:
    tenant = parse_snapshot(document or demo()).tenant
    report = report_from_snapshot(tenant, source="demo", generated_at=NOW, **kwargs)
    return render_health_page(report), report


def summary(date: str, by_code: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {"date": date, "run_id": f"{date}-x", "findings_by_code": by_code, **extra}


def add_stale_clones(document: dict[str, Any], count: int, *, upn: str, name: str) -> None:
    """`count` more users in the same stale state as Nestor; `upn` and `name` are formatted
    with the clone's number `n`."""
    stale = next(u for u in document["users"] if u["userPrincipalName"].startswith("nestor"))
    for n in range(count):
        clone = copy.deepcopy(stale)
        clone["id"] = f"00000000-0000-4000-8000-{n:012d}"
        clone["userPrincipalName"] = upn.format(n=n)
        clone["displayName"] = name.format(n=n)
        document["users"].append(clone)


def sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_the_page_loads_nothing_and_runs_only_its_own_hashed_style_and_script() -> None:
    html, _ = render()
    page = Page(html)

    [csp] = page.all("meta", http_equiv="Content-Security-Policy")
    policy = dict(p.strip().split(" ", 1) for p in csp["content"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["style-src"] == f"'{sha(page.raw('style'))}'"
    assert policy["script-src"] == f"'{sha(page.raw('script'))}'"
    assert not page.with_attr("script", "src")
    assert not page.all("link")
    assert not [a for t, a in page.tags if "src" in a and t != "script"]
    assert "url(" not in page.raw("style")
    assert "@import" not in page.raw("style")
    assert not [a for t, a in page.tags if any(k.startswith("on") for k in a)]


def test_every_user_and_group_links_to_its_admin_center_page() -> None:
    document = demo()
    html, report = render(document)
    hrefs = {a["href"] for a in Page(html).all("a") if "href" in a}

    users_with_findings = {r.subject_id for r in report.findings if r.subject == "user"}
    assert users_with_findings
    for user_id in users_with_findings:
        assert links.entra_user_url(user_id) in hrefs
        assert links.user_license_url(user_id) in hrefs
    for group in (g for g in document["groups"] if g.get("assignedLicenses")):
        assert links.group_license_url(group["id"]) in hrefs
    assert links.entra_user_url("x/../y?z").endswith("/userId/x%2F..%2Fy%3Fz")


def test_directory_text_is_escaped() -> None:
    document = demo()
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    erroring = next(
        u
        for u in document["users"]
        if any(s.get("error") not in (None, "None") for s in u["licenseAssignmentStates"])
    )
    erroring["displayName"] = hostile
    document["groups"][0]["displayName"] = "G <b>bold</b>"

    html, _ = render(document)
    page = Page(html)

    assert hostile not in html
    assert "&lt;script&gt;alert(" in html
    assert len(page.all("script")) == 1
    assert not page.all("img")
    assert not page.all("b")


def test_the_seat_chart_carries_the_evaluations_numbers() -> None:
    document = demo()
    tenant = parse_snapshot(document).tenant
    evaluation = evaluate(tenant)
    html, report = render(document)
    page = Page(html)

    bars = page.with_attr("rect", "data-series")
    for sku in evaluation.skus:
        product = next(p.product for p in report.products if p.sku_id == sku.sku.id)
        values = {
            b["data-series"]: int(b["data-value"]) for b in bars if b["data-category"] == product
        }
        assert values == {
            "demand": sku.demand,
            "prepaid": sku.sku.prepaid.enabled,
            "consumed": sku.sku.consumed,
        }
    [chart] = page.all("svg", data_chart="seats")
    assert chart["role"] == "img"
    assert chart["aria-labelledby"].split() == ["chart-seats-t", "chart-seats-d"]


def test_tables_are_capped_per_code_and_say_so() -> None:
    document = demo()
    add_stale_clones(document, 40, upn="clone{n:02d}@contoso.com", name="Clone {n:02d}")

    html, report = render(document, rows_per_code=5)

    counts = {c.code: c.findings for c in report.codes}
    shown: dict[str, int] = {}
    for row in report.findings:
        shown[row.code] = shown.get(row.code, 0) + 1
    assert max(shown.values()) == 5
    assert any(n > 5 for n in counts.values())
    assert report.findings_total == sum(counts.values())
    assert f"Showing {len(report.findings)} of {report.findings_total} finding(s)" in html
    assert len(Page(html).all("tr", data_code=next(c for c, n in counts.items() if n > 5))) == 6


def test_the_kept_rows_are_errors_first_then_by_name_whatever_the_order_fed() -> None:
    tenant = load_snapshot(str(DEMO)).tenant
    docs = [
        {
            "id": f"u{n}",
            "displayName": name,
            "findings": [{"code": "Other", "severity": sev, "message": "m"}],
        }
        for n, (name, sev) in enumerate(
            [("Zed", "error"), ("Amy", "warning"), ("Bob", "error"), ("Cat", "error")]
        )
    ]
    builder = HealthBuilder(tenant.skus.values(), tenant.groups.values(), lambda s, p: p, 2)
    builder.add_users(docs)
    report = builder.build(tenant="t", generated_at=NOW, source="s", demand={}, members={})

    assert [r.name for r in report.findings] == ["Bob", "Cat"]
    assert report.codes[0].findings == 4
    assert [c.value for c in report.health] == [3, 0, 0]


def test_changes_are_counted_from_the_previous_night_and_trends_drawn_from_history() -> None:
    _, first = render()
    by_code = {c.code: c.findings for c in first.codes}
    history = [
        summary("2026-11-30", {"CountViolation": 9}, seat_forecast=[]),
        summary(
            "2026-12-01",
            {**by_code, "CountViolation": by_code["CountViolation"] + 3, "Gone": 4},
            health={"error": 2, "stale": 0, "pending": 5},
            seat_forecast=[
                {"sku_id": "s1", "product_name": "P1", "demand": 7, "prepaid_enabled": 5}
            ],
        ),
    ]

    html, report = render(history=history)
    page = Page(html)

    codes = {c.code: c for c in report.codes}
    assert report.compared_with == "2026-12-01"
    assert codes["CountViolation"].change == -3
    assert codes["Gone"].findings == 0
    assert codes["Gone"].change == -4
    assert codes["Other"].change == 0
    [error_tile] = page.all("li", data_health="users in error")
    assert int(error_tile["data-change"]) == int(error_tile["data-value"]) - 2
    [line] = [
        p for p in page.with_attr("polyline", "data-series") if p["data-series"] == "CountViolation"
    ]
    assert line["data-values"] == f"9,{by_code['CountViolation'] + 3}"
    [demand] = [
        p for p in page.with_attr("polyline", "data-series") if p["data-series"] == "P1 demand"
    ]
    assert demand["data-values"] == ",7"
    assert len(page.all("svg", data_chart="code-trend")) == 1


def test_the_seat_trend_plots_consumed_units_and_a_night_without_them_is_a_gap() -> None:
    """Each product has three lines in its own colour: demand (solid), prepaid (dashed) and
    consumed (dotted). A record stored without `consumed` leaves a gap in that line only."""

    def seats(demand: int, consumed: int | None) -> dict[str, Any]:
        forecast = {"sku_id": "s1", "product_name": "P1", "demand": demand, "prepaid_enabled": 5}
        return {**forecast, **({} if consumed is None else {"consumed": consumed})}

    history = [
        summary("2026-11-28", {}, seat_forecast=[seats(6, 4)]),
        summary("2026-11-29", {}, seat_forecast=[seats(7, None)]),
        summary("2026-11-30", {}, seat_forecast=[seats(7, 5)]),
        summary("2026-12-01", {}, seat_forecast=[seats(8, 5)]),
    ]

    html, _ = render(history=history)
    page = Page(html)

    lines = {
        p["data-series"]: p
        for p in page.with_attr("polyline", "data-series")
        if p["data-series"].startswith("P1 ")
    }
    assert {k: p["data-values"] for k, p in lines.items()} == {
        "P1 demand": "6,7,7,8",
        "P1 prepaid": "5,5,5,5",
        "P1 consumed": "4,,5,5",
    }
    assert "stroke-dasharray" not in lines["P1 demand"]
    assert lines["P1 prepaid"]["stroke-dasharray"] == "5 3"
    assert lines["P1 consumed"]["stroke-dasharray"] == "1.5 2.5"
    assert len({p["stroke"] for p in lines.values()}) == 1  # one product, one colour
    assert len(page.all("polyline", data_series="P1 consumed")) == 2  # 4 | gap | 5,5
    assert "demand (solid), prepaid (dashed) and consumed (dotted)" in page.raw("title")


def test_a_history_without_consumed_draws_no_consumed_line() -> None:
    history = [
        summary(
            "2026-12-01",
            {},
            seat_forecast=[
                {"sku_id": "s1", "product_name": "P1", "demand": 7, "prepaid_enabled": 5}
            ],
        )
    ]

    _, report = render(history=history)

    assert [s.label for s in report.trends.seats] == ["P1 demand", "P1 prepaid"]


def test_ninety_nights_at_most_one_record_per_date() -> None:
    records = [
        summary(f"2026-{m:02d}-{d:02d}", {"Other": d}, finished_at=f"t{k}")
        for k, (m, d) in enumerate((m, d) for m in range(1, 6) for d in range(1, 29))
    ]
    records.append(summary("2026-05-28", {"Other": 99}, finished_at="t999"))
    kept = nights(records, until="2026-05-28")

    assert len(kept) == 90
    assert kept[-1]["findings_by_code"] == {"Other": 99}
    assert previous_night(kept, "2026-05-28")["date"] == "2026-05-27"  # type: ignore[index]
    assert len(trends(kept).dates) == 90


def test_sku_prices_give_the_monthly_cost_of_shortfall_and_redundant_direct() -> None:
    html, report = render(prices={"EMS": 10.5, "enterprisepack": 20})

    ems = next(p for p in report.products if p.part_number == "EMS")
    e3 = next(p for p in report.products if p.part_number == "ENTERPRISEPACK")
    assert (ems.shortfall, ems.waiting) == (2, 2)  # Irvin and Joni; Pradeep needs no seat
    assert ems.shortfall_cost == pytest.approx(21)
    assert e3.redundant_direct == 2
    assert e3.redundant_cost == pytest.approx(40)
    assert "Shortfall / month" in html
    assert "21.00" in html
    unpriced, _ = render()
    assert "Shortfall / month" not in unpriced


def test_a_user_waiting_for_a_seat_through_two_groups_is_one_user_waiting() -> None:
    # one CountViolation per group path: a user in two licensing groups of a product with no
    # free seat has two, and is still one user waiting for one seat
    b = (
        seed_tenant(e3_seats=0)
        .member(BASE, "ann")
        .member(TEAMS, "ann")
        .state("ann", E3, via=BASE, state="Error", error="CountViolation")
        .state("ann", E3, via=TEAMS, state="Error", error="CountViolation")
    )

    report = report_from_snapshot(b.build(), source="test", generated_at=NOW)

    e3 = next(p for p in report.products if p.sku_id == E3_SKU_ID)
    assert e3.waiting == 1


def test_a_100k_user_page_stays_small_because_rows_are_capped() -> None:
    """The size does not grow with users: 1,000 extra users in error add no rows once every
    code has its 50."""
    document = demo()
    base, _ = render(document)
    add_stale_clones(document, 1000, upn="c{n:04d}@contoso.com", name="C {n:04d}")
    bigger, report = render(document)

    assert report.users_scanned == 1023
    assert len(bigger) < len(base) + 60 * 1500
    assert len(bigger) < 2_000_000
    assert re.search(r"data-users-scanned=\"1023\"", bigger)


def test_a_change_to_one_of_two_groups_of_the_same_name_is_not_pinned_on_both() -> None:
    # display names are not unique, and a night's drift names its group by display name only
    document = demo()
    ems = next(g for g in document["groups"] if g["displayName"] == "Licensing_Office365_EMS_E3")
    twin = {**copy.deepcopy(ems), "id": "00000000-0000-4000-8000-0000000000aa", "members": []}
    document["groups"].append(twin)
    change = {
        "kind": "group-licenses-changed",
        "subject": "Licensing_Office365_EMS_E3",
        "detail": "EMS: disabled INTUNE_A",
        "actor": "alice@contoso.com",
    }
    history = [summary("2026-12-01", {}, drift=[change])]

    _, report = render(document, history=history)

    rows = [g for g in report.groups if g.name == "Licensing_Office365_EMS_E3"]
    assert len(rows) == 2
    assert all(row.drift == () for row in rows)
    assert [d.detail for d in report.drift_other] == ["EMS: disabled INTUNE_A"]
