"""The data-loss guard: who would lose a mailbox or OneDrive, through which plans and paths."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.capabilities import CapabilityMapError, capabilities, read_capabilities
from shared.catalog.products import read_catalog
from shared.core.dataloss import (
    DATA_LOSS_RISK,
    MAILBOX,
    ONEDRIVE,
    REMOVE_LICENSES_DOC,
    UNLICENSED_ONEDRIVE_DOC,
    CapabilityLoss,
    capability_losses,
    data_loss_finding,
)
from shared.core.effective import effective_licenses
from shared.core.findings import ERROR, Names
from shared.core.model import Tenant
from shared.core.whatif import (
    AddMember,
    RemoveMember,
    RemoveSku,
    SetDisabledPlans,
    apply_changes,
)
from tests.builders import (
    BASE,
    E3,
    E3_PLANS,
    EMS,
    EMS_GROUP,
    EMS_PLANS,
    TEAMS,
    TenantBuilder,
    seed_tenant,
)

ROOT = Path(__file__).resolve().parents[2]
CAPS = capabilities().plans
E1 = "STANDARDPACK"
E1_PLANS = {
    "EXCHANGE_S_STANDARD": "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    "SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1",
    "SHAREPOINTWAC": "e95bec33-7c88-4a70-8e19-b10bd9d0c014",
    "TEAMS1": "57ff2da0-773e-42df-b2af-ffb7a2317929",
}


def losses(before: Tenant, after: Tenant) -> dict[str, tuple[CapabilityLoss, ...]]:
    return capability_losses(effective_licenses(before), effective_licenses(after), CAPS)


def caps_of(found: dict[str, tuple[CapabilityLoss, ...]], user_id: str) -> set[str]:
    return {loss.capability for loss in found.get(user_id, ())}


# --------------------------------------------------------------------------- the map


def test_the_mailbox_capability_has_every_exchange_mailbox_plan_but_not_the_foundation() -> None:
    mailbox = CAPS[MAILBOX]

    assert E3_PLANS["EXCHANGE_S_ENTERPRISE"] in mailbox
    assert E1_PLANS["EXCHANGE_S_STANDARD"] in mailbox
    assert "4a82b400-a79f-41a4-b4e2-e94f5787b113" in mailbox  # EXCHANGE_S_DESKLESS (kiosk)
    assert "e9b4930a-925f-45e2-ac2a-3f7788ca6fdd" in mailbox  # EXCHANGE_S_STANDARD_GOV
    assert EMS_PLANS["EXCHANGE_S_FOUNDATION"] not in mailbox
    assert "176a09a6-7ec5-4039-ac02-b2791c6ba793" not in mailbox  # archiving add-on


def test_the_onedrive_capability_has_sharepoint_and_onedrive_plans_but_not_office_for_the_web() -> (
    None
):
    onedrive = CAPS[ONEDRIVE]

    assert E3_PLANS["SHAREPOINTENTERPRISE"] in onedrive
    assert E1_PLANS["SHAREPOINTSTANDARD"] in onedrive
    assert "13696edf-5a08-49f6-8134-03083ed8ba30" in onedrive  # ONEDRIVESTANDARD
    assert "902b47e5-dcb2-4fdc-858b-c63a90a2bdb9" in onedrive  # SHAREPOINTDESKLESS
    assert E3_PLANS["SHAREPOINTWAC"] not in onedrive
    assert E3_PLANS["TEAMS1"] not in onedrive | CAPS[MAILBOX]


def test_every_mapped_plan_is_a_plan_of_microsofts_catalog() -> None:
    catalog = read_catalog()

    for plan_ids in CAPS.values():
        assert plan_ids <= set(catalog.plans)


def test_the_committed_map_is_what_the_generator_makes_from_the_catalog() -> None:
    result = subprocess.run(
        [sys.executable, "tools/make_capability_map.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout


def test_a_malformed_map_is_refused_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "caps.json"
    path.write_text('{"capabilities": {"mailbox": {"plans": [{"servicePlanId": "nope"}]}}}')

    with pytest.raises(CapabilityMapError, match=r"'mailbox' plans\[0\]"):
        read_capabilities(path)


# --------------------------------------------------------------------------- losses


def two_products() -> TenantBuilder:
    return (
        seed_tenant()
        .sku(E1, E1_PLANS, seats=10)
        .group("Licensing_E1", [E1])
        .user("ann")
        .user("bob")
        .member(BASE, "ann", "bob")
        .member(EMS_GROUP, "ann")
        .processed()
    )


def test_leaving_the_only_mailbox_group_loses_the_mailbox_and_names_plan_and_group() -> None:
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])

    found = losses(before, after)

    assert caps_of(found, b.id("ann")) == {MAILBOX, ONEDRIVE}
    mailbox = next(x for x in found[b.id("ann")] if x.capability == MAILBOX)
    (grant,) = mailbox.before
    assert grant.plan_id == E3_PLANS["EXCHANGE_S_ENTERPRISE"]
    assert grant.group_ids == (b.id(BASE),)
    assert b.id("bob") not in found


def test_the_exchange_foundation_left_behind_does_not_count_as_a_mailbox() -> None:
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])

    found = losses(before, after)

    # ann keeps EMS (with EXCHANGE_S_FOUNDATION) and still loses her mailbox.
    assert any(lic.sku_id == b.id(EMS) for lic in effective_licenses(after)[b.id("ann")])
    assert MAILBOX in caps_of(found, b.id("ann"))


def test_moving_from_the_e1_group_to_the_e3_group_loses_nothing() -> None:
    b = two_products().member("Licensing_E1", "carl")
    before = b.build()
    after = apply_changes(
        before,
        [AddMember(b.id(BASE), b.id("carl")), RemoveMember(b.id("Licensing_E1"), b.id("carl"))],
    )

    assert losses(before, after) == {}
    skus = {lic.sku_id for lic in effective_licenses(after)[b.id("carl")]}
    assert skus == {b.id(E3)}


def test_removing_first_and_adding_later_is_still_seen_as_a_loss_in_between() -> None:
    b = two_products().member("Licensing_E1", "carl")
    before = b.build()
    gap = apply_changes(before, [RemoveMember(b.id("Licensing_E1"), b.id("carl"))])

    assert caps_of(losses(before, gap), b.id("carl")) == {MAILBOX, ONEDRIVE}


def test_disabling_exchange_in_a_group_loses_mailboxes_of_members_without_another_path() -> None:
    b = two_products().direct("bob", E3)
    before = b.build()
    disabled = b.plan_ids(E3, ["EXCHANGE_S_ENTERPRISE", "TEAMS1"])
    after = apply_changes(before, [SetDisabledPlans(b.id(BASE), b.id(E3), disabled)])

    found = losses(before, after)

    assert caps_of(found, b.id("ann")) == {MAILBOX}
    assert b.id("bob") not in found  # his direct E3 still enables Exchange


def test_disabling_teams_is_not_data_loss() -> None:
    b = two_products()
    before = b.build()
    disabled = b.plan_ids(E3, ["TEAMS1", "SWAY", "YAMMER_ENTERPRISE", "Deskless", "MCOSTANDARD"])
    after = apply_changes(before, [SetDisabledPlans(b.id(BASE), b.id(E3), disabled)])

    assert losses(before, after) == {}


def test_a_second_path_keeps_the_capability_and_a_loss_names_every_path_it_had() -> None:
    b = two_products().direct("ann", E3, ["TEAMS1"])
    before = b.build()
    old = effective_licenses(before)
    without_base = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])

    assert losses(before, without_base) == {}
    (mailbox, _) = capability_losses(old, {b.id("ann"): ()}, CAPS)[b.id("ann")]
    (grant,) = mailbox.before
    assert set(grant.group_ids) == {None, b.id(BASE)}
    assert mailbox.had_direct
    assert mailbox.group_ids == (b.id(BASE),)


def test_the_finding_is_an_error_with_the_deadlines_their_sources_and_the_way_back() -> None:
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])
    lost = losses(before, after)[b.id("ann")]

    finding = data_loss_finding(before.users[b.id("ann")], lost, Names(before))

    assert finding.code == DATA_LOSS_RISK
    assert finding.severity == ERROR
    assert finding.key == f"{b.id('ann')}|-|DataLossRisk|-"
    assert "30 days" in finding.message
    assert REMOVE_LICENSES_DOC in finding.message
    assert UNLICENSED_ONEDRIVE_DOC in finding.message
    assert "EXCHANGE_S_ENTERPRISE" in finding.plans
    assert f"add the user back to '{BASE}'" in finding.remedy


def test_a_group_that_stopped_assigning_the_product_is_named_as_the_way_back_too() -> None:
    """The group dropped E3 and Ann is still its member: "add the user back" alone sends the
    admin to a membership that never changed; the product or plan can be given back there."""
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveSku(b.id(BASE), b.id(E3))])
    lost = losses(before, after)[b.id("ann")]

    finding = data_loss_finding(before.users[b.id("ann")], lost, Names(before))

    assert f"add the user back to '{BASE}'" in finding.remedy
    assert "assign the product there again with the plan enabled" in finding.remedy


def test_the_mailbox_deadline_is_an_instant_in_utc_not_a_date_read_in_the_admins_zone() -> None:
    """'restore it by 2027-01-01' read by an admin in UTC-8 means the end of their 1 January,
    a day after the 30 days end (06:35 UTC): the deadline is said to the minute, in UTC."""
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])
    seen = datetime(2026, 12, 1, 22, 35, 40, tzinfo=timezone(timedelta(hours=-8)))
    lost = [replace(loss, seen_at=seen) for loss in losses(before, after)[b.id("ann")]]

    finding = data_loss_finding(before.users[b.id("ann")], lost, Names(before))

    assert (
        "restore it by 2027-01-01 06:35 UTC (the loss was seen 2026-12-02 06:35 UTC)"
        in finding.message
    )


# --------------------------------------------------------------------------- properties


@st.composite
def membership_changes(draw: st.DrawFn) -> tuple[Tenant, list[AddMember | RemoveMember]]:
    users = ["ann", "bob", "carl", "dora"]
    b = two_products()
    for user in users:
        b.user(user)
    groups = [BASE, TEAMS, EMS_GROUP, "Licensing_E1"]
    for group in groups:
        members = draw(st.lists(st.sampled_from(users), unique=True))
        b.member(group, *members)
    tenant = b.build()
    changes = draw(
        st.lists(
            st.tuples(st.booleans(), st.sampled_from(groups), st.sampled_from(users)), max_size=6
        )
    )
    return tenant, [(AddMember if add else RemoveMember)(b.id(g), b.id(u)) for add, g, u in changes]


@given(membership_changes())
@settings(max_examples=80, deadline=None)
def test_a_loss_means_some_plan_of_it_before_and_none_after(
    case: tuple[Tenant, list[AddMember | RemoveMember]],
) -> None:
    before, changes = case
    after = apply_changes(before, changes)
    old, new = effective_licenses(before), effective_licenses(after)

    found = capability_losses(old, new, CAPS)

    for user_id in before.users:
        for capability, plan_ids in CAPS.items():
            had = any(lic.enabled_plans & plan_ids for lic in old[user_id])
            has = any(lic.enabled_plans & plan_ids for lic in new[user_id])
            assert (capability in caps_of(found, user_id)) == (had and not has)


def test_a_mailbox_loss_says_a_shared_mailbox_needs_no_license_a_onedrive_loss_does_not() -> None:
    """A licensed shared mailbox whose license goes loses nothing (under 50 GB, no archive, no
    litigation hold): the guard cannot tell it from a user's, so the finding says so."""
    b = two_products()
    before = b.build()
    after = apply_changes(before, [RemoveMember(b.id(BASE), b.id("ann"))])
    lost = losses(before, after)[b.id("ann")]
    onedrive = [loss for loss in lost if loss.capability == "onedrive"]
    assert onedrive
    assert len(onedrive) < len(lost)

    both = data_loss_finding(before.users[b.id("ann")], lost, Names(before))
    files = data_loss_finding(before.users[b.id("ann")], onedrive, Names(before))

    assert "shared mailbox, it needs no license and loses nothing" in both.remedy
    assert "more than 50 GB" in both.remedy
    assert "needs no license" not in files.remedy
