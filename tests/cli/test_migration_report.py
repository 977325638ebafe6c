"""`license-guard report migration`: the direct -> group migration plan on the demo tenant."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.snapshot import load_snapshot
from shared.cli.main import EXIT_OK, main
from shared.core.evaluate import evaluate
from shared.core.migration import migration_plan, suggested_group_name
from shared.render.migration import MIGRATION_CSV_HEADER, not_yet
from tests.csv_files import csv_rows
from tests.demo_tenant import DEMO

E1_SKU = "18181a46-0d4e-45cd-891e-60aabd171b4e"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["report", "migration", *args])
    return status, capsys.readouterr().out


def demo() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def test_megan_bowen_is_a_safe_removal_candidate(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "--snapshot", str(DEMO), "--format", "json")
    document = json.loads(out)

    assert status == EXIT_OK
    safe = [c["user"]["displayName"] for c in document["removalCandidates"] if c["safe"]]
    assert safe == ["Megan Bowen"]
    lidia = next(
        c for c in document["removalCandidates"] if c["user"]["displayName"] == "Lidia Holloway"
    )
    assert lidia["safe"] is False
    assert lidia["unhealthyGroups"][0]["groupName"] == "Licensing_Office365_E3_Base"


def test_lee_gu_would_lose_four_named_plans(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, "--snapshot", str(DEMO), "--format", "json")

    (lee,) = json.loads(out)["wouldDropPlans"]
    assert lee["user"]["displayName"] == "Lee Gu"
    assert sorted(lee["plans"]) == ["Deskless", "SWAY", "TEAMS1", "YAMMER_ENTERPRISE"]


def test_isaiah_langers_e1_is_direct_only_with_a_suggested_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = run(capsys, "--snapshot", str(DEMO), "--format", "json")

    (only,) = json.loads(out)["directOnly"]
    assert only["skuPartNumber"] == "STANDARDPACK"
    assert [u["displayName"] for u in only["users"]] == ["Isaiah Langer"]
    assert only["suggestedGroupName"] == "Licensing_STANDARDPACK_6plans"
    assert only["disabledPlans"] == []
    assert only["existingGroups"] == []


def test_the_table_has_each_section_in_migration_order(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "--snapshot", str(DEMO))

    assert status == EXIT_OK
    assert "Never remove first" in out
    assert (
        "Megan Bowen <megan.bowen@contoso.com>: Office 365 E3 covered by "
        "Licensing_Office365_E3_Base" in out
    )
    assert (
        "would lose 4 plan(s): Microsoft StaffHub, Microsoft Teams, Sway, Yammer Enterprise" in out
    )
    assert "suggested group: Licensing_STANDARDPACK_6plans" in out
    order = ["REMOVAL CANDIDATES", "NOT YET", "WOULD DROP PLANS", "HELD ONLY DIRECTLY"]
    assert [out.index(h) for h in order] == sorted(out.index(h) for h in order)


@pytest.mark.parametrize(
    "disabled",
    [[], ["00000000-0000-0000-0000-000000000002"]],
    ids=["nothing-disabled", "disables-only-a-plan-the-sku-no-longer-has"],
)
def test_an_existing_group_with_exactly_those_plans_is_suggested_instead_of_a_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], disabled: list[str]
) -> None:
    document = demo()
    document["groups"].append(
        {
            "id": "0e1e1e1e-0000-4000-8000-000000000003",
            "displayName": "E1 users",
            "assignedLicenses": [{"skuId": E1_SKU, "disabledPlans": disabled}],
            "members": [],
        }
    )
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    _, out = run(capsys, "--snapshot", str(path))

    assert "existing group with exactly these plans: E1 users" in out


def test_a_group_that_also_assigns_another_product_is_not_suggested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'E1 users' assigns E1 with exactly Isaiah's plans, and EMS too. Added to it, Isaiah
    would take an EMS seat he does not have today, and where EMS is short of seats Entra
    assigns him neither product from the group (a group's products go all or none): it is no
    group 'with exactly these plans'. A new group is suggested, and the JSON names none."""
    document = demo()
    ems = next(s["skuId"] for s in document["subscribedSkus"] if s["skuPartNumber"] == "EMS")
    document["groups"].append(
        {
            "id": "0e1e1e1e-0000-4000-8000-000000000003",
            "displayName": "E1 users",
            "assignedLicenses": [
                {"skuId": E1_SKU, "disabledPlans": []},
                {"skuId": ems, "disabledPlans": []},
            ],
            "members": [],
        }
    )
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    _, table = run(capsys, "--snapshot", str(path))
    _, out = run(capsys, "--snapshot", str(path), "--format", "json")

    assert "existing group with exactly these plans" not in table
    assert "suggested group: Licensing_STANDARDPACK_6plans" in table
    (only,) = json.loads(out)["directOnly"]
    assert only["existingGroups"] == []


TAKES_NO_MEMBER_BY_HAND = pytest.mark.parametrize(
    ("kind", "where"),
    [
        (
            {"groupTypes": ["DynamicMembership"], "membershipRule": 'user.department -eq "Staff"'},
            "'E1 users' is dynamic: change its membership rule or the user attributes it tests",
        ),
        (
            {"onPremisesSyncEnabled": True},
            "'E1 users' is synced from on-premises: change its membership in on-premises Active "
            "Directory",
        ),
    ],
    ids=["dynamic", "synced-from-on-premises"],
)
"""'E1 users' dynamic or synced (`kind`), and where its members come from (`where`)."""


@TAKES_NO_MEMBER_BY_HAND
def test_an_existing_group_that_takes_no_member_by_hand_says_where_its_members_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: dict[str, Any], where: str
) -> None:
    """Isaiah's E1 is held only directly and 'E1 users' assigns exactly that, but its members
    come from a rule or from on-premises AD: 'add to E1 users' alone sent the admin to the
    admin center, where a dynamic group takes no member by hand and a synced one is
    overwritten by the next sync."""
    document = demo()
    document["groups"].append(
        {
            "id": "0e1e1e1e-0000-4000-8000-000000000003",
            "displayName": "E1 users",
            "assignedLicenses": [{"skuId": E1_SKU, "disabledPlans": []}],
            "members": [],
            **kind,
        }
    )
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    _, table = run(capsys, "--snapshot", str(path))
    _, out = run(capsys, "--snapshot", str(path), "--format", "csv")
    (isaiah,) = [r for r in csv_rows(out) if r[0] == "direct-only"]

    assert f"existing group with exactly these plans: E1 users ({where}" in table
    assert isaiah[10].startswith(f"add to E1 users ({where}")


def test_the_csv_has_one_row_per_direct_assignment_and_is_formula_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = demo()
    megan = next(u for u in document["users"] if u["displayName"] == "Megan Bowen")
    megan["displayName"] = '=HYPERLINK("http://evil.test","Megan")'
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    status, out = run(capsys, "--snapshot", str(path), "--format", "csv")
    rows = csv_rows(out)

    assert status == EXIT_OK
    assert tuple(rows[0]) == MIGRATION_CSV_HEADER
    by_category = {r[0]: r for r in rows[1:]}
    assert set(by_category) == {"removal-candidate", "not-yet", "would-drop-plans", "direct-only"}
    assert by_category["removal-candidate"][3].startswith("'=HYPERLINK")
    assert by_category["direct-only"][9] == "Licensing_STANDARDPACK_6plans"


def test_the_plan_and_the_redundant_direct_findings_agree() -> None:
    tenant = load_snapshot(DEMO).tenant
    evaluation = evaluate(tenant)
    plan = migration_plan(tenant, {r.user.id: r.licenses for r in evaluation.users})

    findings = {
        (f.subject, f.sku_id, f.safe)
        for f in evaluation.findings()
        if f.code == "RedundantDirectAssignment"
    }
    dropping = {
        (f.subject, f.sku_id, f.plans) for f in evaluation.findings() if f.code == "DirectOnlyPlans"
    }

    assert {(c.user_id, c.sku_id, c.safe) for c in plan.covered} == findings
    assert {(p.user_id, p.sku_id) for p in plan.partly_covered} == {
        (user, sku) for user, sku, _ in dropping
    }


def test_suggested_names_are_safe_group_names() -> None:
    assert suggested_group_name("O365_w/o Teams Bundle_M3 ", 12) == (
        "Licensing_O365_w_o_Teams_Bundle_M3_12plans"
    )


def test_one_user_held_only_directly_is_counted_in_the_singular(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = run(capsys, "--snapshot", str(DEMO))

    assert "HELD ONLY DIRECTLY (1 product/plan set, 1 user): one licensing group each" in out


def _megan_group_state(document: dict[str, Any], change: Any) -> None:
    megan = next(u for u in document["users"] if u["displayName"] == "Megan Bowen")
    states = megan["licenseAssignmentStates"]
    group_state = next(s for s in states if s["assignedByGroup"])
    if change is None:
        states.remove(group_state)
    else:
        change(group_state)


NOT_YET = pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            None,
            "Entra has not applied it to the user yet: wait for the group's processing, "
            "then check again",
        ),
        (
            lambda s: s["disabledPlans"].append("efb87545-963c-4e0d-99df-69c6916d9eb0"),
            "still disables plans the group now enables: wait for the group's processing, "
            "then check again",
        ),
        (
            lambda s: s.update(state="Error", error="CountViolation"),
            "in error (CountViolation): fix that first",
        ),
        (
            # a path in state Error that names no error: the user lacks its products all the
            # same (the finding says 'in error (Other)'); there is nothing to wait for
            lambda s: s.update(state="Error", error=None),
            "in error (Other): fix that first",
        ),
    ],
    ids=["pending", "still-processing", "in-error", "in-error-unnamed"],
)
"""Why Megan's path from Licensing_Office365_E3_Base is not yet healthy, and what to do."""


@NOT_YET
def test_not_yet_says_whether_to_wait_for_the_group_or_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, reason: str
) -> None:
    """Mid-migration (users just added to the group, or the group's plans just changed) the
    usual 'not yet' is a path Entra has not processed: 'fix the group path first (not active
    without errors)' sent the admin looking for an error that is not there. The table and the
    CSV say which it is."""
    document = demo()
    _megan_group_state(document, change)
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(document))

    _, table = run(capsys, "--snapshot", str(path))
    _, out = run(capsys, "--snapshot", str(path), "--format", "csv")

    [line] = [line for line in table.splitlines() if "Megan Bowen" in line]
    assert line.endswith(f"Office 365 E3; Licensing_Office365_E3_Base: {reason}")
    [megan] = [r for r in csv_rows(out) if r[3] == "Megan Bowen"]
    assert megan[0] == "not-yet"
    assert megan[10] == f"Licensing_Office365_E3_Base: {reason}"


def test_without_the_users_states_not_yet_names_both_causes() -> None:
    """The nightly run keeps only the users' names for the migration report (no states): its
    'not yet' cannot tell processing from an error, and says what to do for each."""
    tenant = load_snapshot(DEMO).tenant
    users = {u.id: dataclasses.replace(u, states=()) for u in tenant.users.values()}
    lidia = next(u.id for u in users.values() if u.display_name == "Lidia Holloway")
    e3 = next(s.id for s in tenant.skus.values() if s.part_number == "ENTERPRISEPACK")
    base = next(g.id for g in tenant.groups.values() if g.name == "Licensing_Office365_E3_Base")

    why = not_yet(dataclasses.replace(tenant, users=users), lidia, e3, (base,))

    assert why == (
        "Licensing_Office365_E3_Base: not yet Active without errors with every plan it enables "
        "(still processing: wait for it; in error: fix that first)"
    )
