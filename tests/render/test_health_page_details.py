"""The health page's details an admin reads row by row: severity order, users counted once,
codes gone since last night, groups named in every link."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import escape

from shared.adapters.snapshot import parse_snapshot
from shared.catalog.plan_conflicts import plan_conflicts
from shared.catalog.products import catalog
from shared.core.evaluate import evaluate
from shared.render.evaluation import evaluation_json
from shared.render.health_builder import HealthBuilder
from shared.render.health_page import render_health_page
from shared.render.health_sources import report_from_snapshot
from tests.builders import BASE, E3, E3_SKU_ID, seed_tenant
from tests.demo_tenant import DEMO
from tests.render.page import Page

NOW = "2026-12-02T06:00:00+00:00"


def render(**kwargs: Any) -> tuple[str, Any]:
    tenant = parse_snapshot(json.loads(DEMO.read_text())).tenant
    report = report_from_snapshot(tenant, source="demo", generated_at=NOW, **kwargs)
    return render_health_page(report), report


def nested(group_id: str, part: str, user_ids: list[str]) -> dict[str, Any]:
    return {
        "key": f"group:{group_id}|NestedGroupMember|{part}",
        "code": "NestedGroupMember",
        "severity": "info",
        "groupId": group_id,
        "userIds": user_ids,
        "message": "m",
    }


def build(builder: HealthBuilder, **kwargs: Any) -> Any:
    return builder.build(tenant="t", generated_at=NOW, source="s", demand={}, members={}, **kwargs)


def test_severity_columns_sort_errors_first_not_alphabetically() -> None:
    # alphabetically "info" sorts between "error" and "warning"; the sort key is the rank
    html, _ = render()
    page = Page(html)

    cells = [a for t, a in page.tags if t == "td" and a.get("class", "").startswith("sev-")]
    ranks = {"sev-error": "0", "sev-warning": "1", "sev-info": "2"}
    severities = [a for a in cells if a["class"] in ranks]
    assert {a["class"] for a in severities} >= {"sev-error", "sev-info"}
    assert all(a.get("data-sort") == ranks[a["class"]] for a in severities)


def test_a_user_left_out_through_two_groups_is_one_user_of_the_code() -> None:
    # a nested group inside two licensed groups: one finding per licensed group, same users
    builder = HealthBuilder([], [], lambda sku_id, part: part)
    builder.add_findings([nested("g1", "n1", ["u1", "u2"]), nested("g2", "n1", ["u1", "u2"])])
    builder.add_findings([nested("g2", "n2", ["u2", "u3"])])

    [code] = build(builder).codes

    assert code.findings == 3
    assert code.users == 3


def test_a_code_gone_since_last_night_does_not_claim_a_severity() -> None:
    # the stored summary holds counts only: the page cannot know how severe a code was
    history = [{"date": "2026-12-01", "findings_by_code": {"CountViolation": 2, "Gone": 4}}]
    html, report = render(history=history)

    gone = next(c for c in report.codes if c.code == "Gone")
    assert gone.severity not in ("error", "warning", "info")
    row = html.split('<tr data-code="Gone">', 1)[1].split("</tr>", 1)[0]
    assert ">info<" not in row
    assert "sev-info" not in row


def test_a_finding_about_a_group_not_in_the_listing_still_names_it() -> None:
    builder = HealthBuilder([], [], lambda sku_id, part: part)
    builder.add_findings([nested("g-unknown", "n1", ["u1"])])

    [row] = build(builder).findings

    assert row.name == "g-unknown"
    assert row.group_name == "g-unknown"


def test_a_scan_of_no_users_does_not_say_every_users_licenses_match() -> None:
    # an empty scan (wrong tenant, a filter that matched nobody) checked nothing
    report = build(HealthBuilder([], [], lambda sku_id, part: part))

    html = render_health_page(report)

    assert "0 users scanned" in html
    assert "every user's licenses match" not in html
    assert "No users were scanned" in html


def test_each_finding_row_says_what_to_do_not_only_what_is_wrong() -> None:
    tenant = parse_snapshot(json.loads(DEMO.read_text())).tenant
    names = catalog()
    evaluation = evaluate(tenant, *names.names_for(tenant), plan_conflicts())
    document = evaluation_json(evaluation, tenant)
    remedies = {
        f["remedy"]
        for u in document["users"]
        for f in u["findings"]
        if f["severity"] == "error" and f.get("remedy")
    }

    html, _ = render()

    assert remedies
    assert all(str(escape(remedy)) in html for remedy in remedies)


def test_products_short_of_seats_come_first_in_the_seats_table() -> None:
    # alphabetically EMS comes before Office 365 E3; the product users wait for comes first
    b = (
        seed_tenant(e3_seats=0)
        .member(BASE, "ann")
        .state("ann", E3, via=BASE, state="Error", error="CountViolation")
    )

    report = report_from_snapshot(b.build(), source="test", generated_at=NOW)

    first, *rest = report.products
    assert first.sku_id == E3_SKU_ID
    assert first.shortfall == 1
    assert rest
    assert all(not p.shortfall for p in rest)


def test_bidi_overrides_in_directory_names_are_shown_not_obeyed() -> None:
    # a group anyone may create named with a right-to-left override reorders the rest of the
    # line: the change's "(by who)" would read as someone else's, as in the terminal tables
    document = json.loads(DEMO.read_text())
    document["groups"][0]["displayName"] = "Sales\u202e)moc.osotnoc@nimda yb("
    erroring = next(
        u
        for u in document["users"]
        if any(s.get("error") not in (None, "None") for s in u["licenseAssignmentStates"])
    )
    erroring["displayName"] = "Ann\u2066\u200b Lee"
    change = {"kind": "x", "subject": "P\u202eQ", "detail": "d\u2028e", "actor": "a\u202db"}
    history = [{"date": "2026-12-01", "findings_by_code": {}, "drift": [change]}]
    tenant = parse_snapshot(document).tenant
    report = report_from_snapshot(tenant, source="s", generated_at=NOW, history=history)

    html = render_health_page(report)

    for char in "\u202e\u2066\u200b\u2028\u202d":
        assert char not in html
    assert "Sales\\u202e)moc" in html
    assert "P\\u202eQ: d\\u2028e (by a\\u202db)" in html


def test_chart_labels_show_control_characters_too() -> None:
    # product names in the trend come from stored summaries (--history files)
    seat = {"sku_id": "s", "product_name": "E3\u202e3E", "demand": 1, "prepaid_enabled": 1}
    history = [{"date": "2026-12-01", "findings_by_code": {"A": 1}, "seat_forecast": [seat]}]

    html, _ = render(history=history)

    assert "\u202e" not in html
    assert "E3\\u202e3E demand" in html
