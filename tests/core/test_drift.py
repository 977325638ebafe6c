"""Drift between two tenants and what-if changes: configuration, users' gains and losses."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.catalog.capabilities import capabilities
from shared.core.drift import (
    ADDED,
    CHANGED,
    GAINED,
    LOST,
    REMOVED,
    diff_tenants,
    group_drift,
    license_deltas,
    seat_deltas,
    sku_drift,
)
from shared.core.effective import effective_licenses
from shared.core.evaluate import evaluate
from shared.core.findings import Names
from shared.core.model import ServicePlan, Sku, Tenant
from shared.core.references import BadReference, find_group, find_plans, find_sku, find_user
from shared.core.whatif import (
    AddMember,
    AddSku,
    Change,
    RemoveMember,
    RemoveSku,
    SetDisabledPlans,
    apply_changes,
    change_notes,
    what_if,
)
from tests.builders import (
    BASE,
    E3,
    E3_SKU_ID,
    EMS,
    EMS_GROUP,
    EMS_PLANS,
    EMS_SKU_ID,
    TEAMS,
    TenantBuilder,
    seed_tenant,
)
from tools.make_demo_snapshot import E1_PLANS

CAPS = capabilities().plans
COPILOT = ("Bing_Chat_Enterprise", "0d0c0d31-fae7-41f2-b909-eaf4d7f26dba")


def tenant_with_members() -> TenantBuilder:
    return (
        seed_tenant(e3_seats=3)
        .user("ann")
        .user("bob")
        .user("carl")
        .member(BASE, "ann", "bob")
        .member(TEAMS, "bob")
        .member(EMS_GROUP, "ann")
        .processed()
    )


def with_new_plan(tenant: Tenant, sku_id: str, plan: tuple[str, str]) -> Tenant:
    sku = tenant.skus[sku_id]
    grown = Sku(sku.id, sku.part_number, (*sku.plans, ServicePlan(plan[1], plan[0])), sku.prepaid)
    return dataclasses.replace(tenant, skus={**tenant.skus, sku_id: grown})


# --------------------------------------------------------------------------- configuration


def test_a_new_plan_in_a_sku_is_reported_with_every_group_it_reaches() -> None:
    b = tenant_with_members()
    old = b.build()
    new = with_new_plan(old, E3_SKU_ID, COPILOT)

    (drift,) = sku_drift(old, new)

    assert drift.status == CHANGED
    (plan,) = drift.new_plans
    assert plan.plan_id == COPILOT[1]
    assert set(plan.group_ids) == {b.id(BASE), b.id(TEAMS)}  # enabled by default everywhere
    assert plan.users == 2


def test_a_group_that_already_disables_the_new_plan_is_not_reached() -> None:
    b = tenant_with_members()
    old = b.build()
    new = with_new_plan(old, E3_SKU_ID, COPILOT)
    base = new.groups[b.id(BASE)]
    lic = dataclasses.replace(
        base.licenses[0], disabled_plans=base.licenses[0].disabled_plans | {COPILOT[1]}
    )
    new = dataclasses.replace(
        new, groups={**new.groups, base.id: dataclasses.replace(base, licenses=(lic,))}
    )

    (drift,) = sku_drift(old, new)

    assert drift.new_plans[0].group_ids == (b.id(TEAMS),)


def test_prepaid_seat_changes_and_new_or_dropped_subscriptions_are_reported() -> None:
    old = tenant_with_members().build()
    new = seed_tenant(e3_seats=5).sku("VISIO", 2).build()
    new = dataclasses.replace(new, skus={k: v for k, v in new.skus.items() if v.part_number != EMS})

    drifts = {d.sku_id: d for d in sku_drift(old, new)}

    e3 = drifts[E3_SKU_ID]
    assert e3.prepaid_changed
    assert e3.prepaid_before is not None
    assert e3.prepaid_after is not None
    assert (e3.prepaid_before.enabled, e3.prepaid_after.enabled) == (3, 5)
    parts = {
        **{k: s.part_number for k, s in old.skus.items()},
        **{k: s.part_number for k, s in new.skus.items()},
    }
    statuses = {parts[k]: d.status for k, d in drifts.items()}
    assert statuses == {E3: CHANGED, EMS: REMOVED, "VISIO": ADDED}


def test_group_drift_names_products_added_and_removed_and_plans_disabled_or_enabled() -> None:
    b = tenant_with_members()
    old = b.build()
    changed = (
        seed_tenant(e3_seats=3)
        .user("ann")
        .user("bob")
        .user("carl")
        .group(BASE, {E3: ["TEAMS1", "SWAY", "EXCHANGE_S_ENTERPRISE"], EMS: []})
        .group(TEAMS, [])
        .member(BASE, "ann", "bob", "carl")
        .member(TEAMS, "bob")
        .member(EMS_GROUP, "ann")
    )
    new = changed.build()

    drifts = {d.name: d for d in group_drift(old, new)}

    base = drifts[BASE]
    assert base.status == CHANGED
    assert base.skus_added == (b.id(EMS),)
    (plans,) = base.plan_changes
    assert plans.newly_disabled == b.plan_ids(E3, ["EXCHANGE_S_ENTERPRISE"])
    assert plans.newly_enabled == b.plan_ids(E3, ["YAMMER_ENTERPRISE", "Deskless"])
    assert base.members_added == (b.id("carl"),)
    assert drifts[TEAMS].status == LOST
    assert drifts[TEAMS].skus_removed == (b.id(E3),)
    assert EMS_GROUP not in drifts  # nothing changed


def test_a_dynamic_rule_change_and_a_group_that_starts_licensing_are_drift() -> None:
    old = seed_tenant().group("Sales", []).build()
    new = (
        seed_tenant()
        .group("Sales", [E3])
        .group(BASE, {E3: []}, rule='user.department -eq "Sales"')
        .build()
    )

    drifts = {d.name: d for d in group_drift(old, new)}

    assert drifts["Sales"].status == GAINED
    assert drifts[BASE].rule_changed
    assert drifts[BASE].rule_after == 'user.department -eq "Sales"'


# --------------------------------------------------------------------------- users' licenses


def test_license_deltas_tell_gained_lost_and_changed_plans_apart() -> None:
    b = tenant_with_members()
    before = b.build()
    after = apply_changes(
        before,
        [
            RemoveMember(b.id(BASE), b.id("ann")),
            AddMember(b.id(TEAMS), b.id("carl")),
            RemoveMember(b.id(TEAMS), b.id("bob")),
        ],
    )
    old, new = effective_licenses(before), effective_licenses(after)

    (ann,) = license_deltas(old[b.id("ann")], new[b.id("ann")])
    (carl,) = license_deltas(old[b.id("carl")], new[b.id("carl")])
    (bob,) = license_deltas(old[b.id("bob")], new[b.id("bob")])

    assert (ann.status, ann.enabled_before, ann.enabled_after) == (LOST, 9, 0)
    assert (carl.status, carl.plans_enabled) == (GAINED, b.plan_ids(E3, ["TEAMS1"]))
    assert bob.status == CHANGED
    assert bob.plans_disabled == b.plan_ids(E3, ["TEAMS1"])
    assert bob.paths_before == (b.id(BASE), b.id(TEAMS))
    assert bob.paths_after == (b.id(BASE),)


def test_the_same_groups_listed_in_another_order_are_no_change() -> None:
    # Graph lists groups in no guaranteed order: two snapshots of an unchanged tenant may
    # list them differently, and a user in two licensing groups of one SKU is not "changed"
    before = tenant_with_members().build()
    after = dataclasses.replace(before, groups=dict(reversed(list(before.groups.items()))))

    drift = diff_tenants(before, after, evaluate(before), evaluate(after), CAPS, Names(before))

    assert drift.users == ()


def test_seat_deltas_show_demand_before_and_after_and_the_shortfall() -> None:
    b = tenant_with_members()
    before = b.build()
    after = apply_changes(before, [AddMember(b.id(BASE), b.id("carl"))])
    after = apply_changes(after, [AddMember(b.id(TEAMS), b.id("ann"))])
    seats = {s.sku_id: s for s in seat_deltas(evaluate(before), evaluate(after))}

    e3 = seats[E3_SKU_ID]
    assert (e3.demand_before, e3.demand_after, e3.prepaid_enabled) == (2, 3, 3)
    assert e3.shortfall == 0
    assert b.id(EMS) not in seats  # unchanged and not short


def test_diff_tenants_puts_a_data_loss_finding_on_the_user_who_lost_a_mailbox() -> None:
    b = tenant_with_members()
    old = b.build()
    new = apply_changes(old, [RemoveMember(b.id(BASE), b.id("ann"))])

    drift = diff_tenants(old, new, evaluate(old), evaluate(new), CAPS, Names(old))

    (ann,) = [u for u in drift.users if u.user_id == b.id("ann")]
    assert ann.finding is not None
    assert ann.finding.code == "DataLossRisk"
    assert {loss.capability for loss in drift.losses} == {"mailbox", "onedrive"}
    assert drift.groups[0].members_removed == (b.id("ann"),)


def moved_to_e1(e1_state: str, error: str | None) -> tuple[TenantBuilder, Tenant, Tenant]:
    """Ann held her mailbox through Base (E3); the new snapshot has her in 'Mail E1' only,
    with Graph's state of that path as given."""
    old = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=1).member(BASE, "ann")
    b = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=1).group("Mail E1", ["E1"])
    b.member("Mail E1", "ann").state("ann", "E1", via="Mail E1", state=e1_state, error=error)
    return b, old.processed().build(), b.processed().build()


def test_diff_a_move_to_a_group_whose_path_graph_shows_in_error_is_a_data_loss() -> None:
    # the new group had no free seat: Graph shows its path in Error (CountViolation), so the
    # user holds no Exchange plan any more, whatever the membership says
    b, old, new = moved_to_e1("Error", "CountViolation")

    drift = diff_tenants(old, new, evaluate(old), evaluate(new), CAPS, Names(old))

    assert {loss.capability for loss in drift.losses} == {"mailbox", "onedrive"}
    (ann,) = [u for u in drift.users if u.user_id == b.id("ann")]
    assert ann.finding is not None


def test_diff_a_move_to_a_group_whose_path_is_active_loses_nothing() -> None:
    _, old, new = moved_to_e1("Active", None)

    drift = diff_tenants(old, new, evaluate(old), evaluate(new), CAPS, Names(old))

    assert drift.losses == ()


# --------------------------------------------------------------------------- what if


def test_what_if_with_no_changes_reports_nobody() -> None:
    tenant = tenant_with_members().build()

    result = what_if(tenant, [], CAPS)

    assert result.users == ()
    assert not result.data_loss
    assert result.tenant_after == tenant


def test_moving_into_a_group_whose_assignment_would_fail_is_a_data_loss_risk() -> None:
    # all-or-none: a user joining a group gets none of its products when one of them fails
    # (here no EMS seat is free), so leaving her only mailbox group for it loses the mailbox
    b = seed_tenant().group("Bundle", [E3, EMS]).member(BASE, "ann").member(EMS_GROUP, "zed")
    b.sku(EMS, EMS_PLANS, seats=1, consumed=1, sku_id=EMS_SKU_ID)
    tenant = b.processed().build()
    move = [AddMember(b.id("Bundle"), b.id("ann")), RemoveMember(b.id(BASE), b.id("ann"))]

    result = what_if(tenant, move, CAPS)

    assert result.predicted_errors
    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}
    assert result.data_loss


def test_moving_into_a_group_with_free_seats_loses_nothing() -> None:
    b = seed_tenant().group("Bundle", [E3, EMS]).member(BASE, "ann").member(EMS_GROUP, "zed")
    tenant = b.processed().build()
    move = [AddMember(b.id("Bundle"), b.id("ann")), RemoveMember(b.id(BASE), b.id("ann"))]

    result = what_if(tenant, move, CAPS)

    assert not result.predicted_errors
    assert not result.data_loss


def test_leaving_the_mailbox_group_is_a_risk_when_the_other_group_path_is_in_error() -> None:
    # the helpdesk "upgraded" ann into a second group whose assignment failed (no free seat):
    # that path gives her nothing, so taking her out of Base leaves her without a mailbox
    b = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=1).group("Mail E1", ["E1"])
    b.member(BASE, "ann").member("Mail E1", "ann")
    b.state("ann", "E1", via="Mail E1", state="Error", error="CountViolation")
    tenant = b.processed().build()

    result = what_if(tenant, [RemoveMember(b.id(BASE), b.id("ann"))], CAPS)

    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}
    assert result.data_loss


def test_taking_the_seat_a_pending_member_awaited_when_he_leaves_is_no_error() -> None:
    # zed, still pending, leaves Mail E1 as ann joins: his seat is hers
    b = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=0).group("Mail E1", ["E1"])
    b.member(BASE, "ann").state("ann", E3, via=BASE).member("Mail E1", "zed")
    swap = [RemoveMember(b.id("Mail E1"), b.id("zed")), AddMember(b.id("Mail E1"), b.id("ann"))]

    result = what_if(b.build(), swap, CAPS)

    (need,) = result.predictions.seats
    assert (need.needed, need.free, need.short) == (1, 1, 0)
    assert not result.predicted_errors


def swap_e1_to_e3(e3_seats: int) -> tuple[TenantBuilder, list[Change]]:
    """The documented E1 -> E3 swap between groups, its last step: ann holds her mailbox
    through Mail E1 and waits in Base (E3) in MutuallyExclusiveViolation; she leaves Mail E1."""
    b = seed_tenant(e3_seats=e3_seats).sku("E1", E1_PLANS, seats=5, consumed=1)
    b.group("Mail E1", ["E1"]).member(BASE, "ann").member("Mail E1", "ann")
    b.state("ann", "E1", via="Mail E1")
    b.state("ann", E3, via=BASE, state="Error", error="MutuallyExclusiveViolation")
    return b, [RemoveMember(b.id("Mail E1"), b.id("ann"))]


def test_leaving_the_group_a_conflict_waits_on_loses_nothing() -> None:
    # Microsoft: the target assignment sits in the conflict error until the user leaves the
    # source group, then it is applied with no service loss (graph-facts 4.4)
    b, swap = swap_e1_to_e3(e3_seats=25)

    result = what_if(b.build(), swap, CAPS)

    assert not result.data_loss


def test_leaving_the_group_a_conflict_waits_on_is_a_risk_without_a_free_seat() -> None:
    # the conflict clears, but the waiting path never took a seat: with none free it fails
    b, swap = swap_e1_to_e3(e3_seats=0)

    result = what_if(b.build(), swap, CAPS)

    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}


def test_moving_into_two_groups_of_a_product_without_a_free_seat_is_a_data_loss_risk() -> None:
    # no seat: Entra assigns the product through neither group (one seat per product), though
    # the predicted CountViolation names only one of them
    b = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=1).member(BASE, "ann")
    b.group("Mail E1", ["E1"]).group("Mail E1 too", ["E1"])
    move = [
        AddMember(b.id("Mail E1"), b.id("ann")),
        AddMember(b.id("Mail E1 too"), b.id("ann")),
        RemoveMember(b.id(BASE), b.id("ann")),
    ]

    result = what_if(b.processed().build(), move, CAPS)

    assert result.predicted_errors
    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}


def test_moving_into_a_group_whose_free_seat_a_pending_member_awaits_is_a_data_loss_risk() -> None:
    # Mail E1's one free seat is zed's once Entra processes his membership (Graph shows no
    # assignment yet): ann would be the second user for one seat
    b = seed_tenant().sku("E1", E1_PLANS, seats=1, consumed=0).group("Mail E1", ["E1"])
    b.member(BASE, "ann").state("ann", E3, via=BASE).member("Mail E1", "zed")
    move = [AddMember(b.id("Mail E1"), b.id("ann")), RemoveMember(b.id(BASE), b.id("ann"))]

    result = what_if(b.build(), move, CAPS)

    (need,) = result.predictions.seats
    assert (need.needed, need.free, need.short) == (1, 0, 1)
    assert result.predicted_errors
    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}


def swap_base_to_e1(e1_seats: int) -> tuple[TenantBuilder, list[Change]]:
    """Ann holds her mailbox only through Base (E3); Base is to assign E1 instead."""
    b = seed_tenant().sku("E1", E1_PLANS, seats=e1_seats, consumed=0).member(BASE, "ann")
    swap: list[Change] = [RemoveSku(b.id(BASE), E3_SKU_ID), AddSku(b.id(BASE), b.id("E1"))]
    return b, swap


def test_swapping_a_groups_product_for_one_without_a_free_seat_is_a_data_loss_risk() -> None:
    # E3 leaves Base, and E1 fails for its member (CountViolation): she holds neither, and
    # her mailbox goes (the admins' "A1 to A3 left an unrecoverable empty mailbox")
    b, swap = swap_base_to_e1(e1_seats=0)

    result = what_if(b.processed().build(), swap, CAPS)

    assert result.predicted_errors
    (ann,) = result.users
    assert {loss.capability for loss in ann.losses} == {"mailbox", "onedrive"}
    assert result.data_loss


def test_swapping_a_groups_product_for_one_with_free_seats_loses_nothing() -> None:
    b, swap = swap_base_to_e1(e1_seats=5)

    result = what_if(b.processed().build(), swap, CAPS)

    assert not result.predicted_errors
    assert not result.data_loss


def test_setting_disabled_plans_on_a_group_without_the_sku_assigns_it() -> None:
    b = tenant_with_members()
    tenant = b.build()
    change = SetDisabledPlans(b.id(EMS_GROUP), b.id(E3), frozenset())

    after = apply_changes(tenant, [change])
    (note,) = change_notes(tenant, [change], Names(tenant))

    assert {lic.sku_id for lic in after.groups[b.id(EMS_GROUP)].licenses} == {b.id(EMS), b.id(E3)}
    assert "does not assign" in note


def test_adding_an_existing_member_is_a_no_op_with_a_note() -> None:
    b = tenant_with_members()
    tenant = b.build()
    change = AddMember(b.id(BASE), b.id("ann"))

    assert apply_changes(tenant, [change]) == tenant
    assert "already a member" in change_notes(tenant, [change], Names(tenant))[0]


def test_a_change_to_a_synced_group_says_to_make_it_on_premises() -> None:
    b = tenant_with_members().group("OnPrem", [E3], synced=True)
    tenant = b.build()

    (note,) = change_notes(tenant, [AddMember(b.id("OnPrem"), b.id("carl"))], Names(tenant))

    assert "on-premises Active Directory" in note


@given(
    st.sampled_from(["ann", "bob", "carl"]),
    st.sampled_from([BASE, TEAMS, EMS_GROUP]),
)
@settings(max_examples=30, deadline=None)
def test_adding_then_removing_a_non_member_is_the_identity(user: str, group: str) -> None:
    b = tenant_with_members()
    tenant = b.build()
    if b.id(user) in tenant.groups[b.id(group)].member_user_ids:
        return
    changes = [AddMember(b.id(group), b.id(user)), RemoveMember(b.id(group), b.id(user))]

    result = what_if(tenant, changes, CAPS)

    assert result.tenant_after == tenant
    assert result.users == ()


# --------------------------------------------------------------------------- resolving names


def test_names_resolve_by_id_exact_name_upn_and_part_number() -> None:
    b = tenant_with_members()
    tenant = b.build()

    assert find_group(tenant, BASE).id == b.id(BASE)
    assert find_group(tenant, b.id(BASE).upper()).id == b.id(BASE)
    assert find_user(tenant, "ann@contoso.test").id == b.id("ann")
    assert find_user(tenant, "Ann").id == b.id("ann")
    assert find_sku(tenant, E3).id == E3_SKU_ID
    assert find_plans(tenant.skus[E3_SKU_ID], "TEAMS1, SWAY") == b.plan_ids(E3, ["TEAMS1", "SWAY"])
    assert find_plans(tenant.skus[E3_SKU_ID], "") == frozenset()


def test_an_ambiguous_display_name_lists_the_matches() -> None:
    tenant = tenant_with_members().user("ann2", display_name="Ann").build()

    with pytest.raises(BadReference, match="ambiguous") as info:
        find_user(tenant, "Ann")

    assert "ann@contoso.test" in str(info.value)
    assert "ann2@contoso.test" in str(info.value)


def test_an_unknown_plan_names_itself_and_the_sku() -> None:
    tenant = tenant_with_members().build()

    with pytest.raises(BadReference, match="'TEAMS2' is not in ENTERPRISEPACK"):
        find_plans(tenant.skus[E3_SKU_ID], "TEAMS1,TEAMS2")
