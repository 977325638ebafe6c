"""Effective licenses: what each user should hold, from memberships and direct assignments."""

from __future__ import annotations

from shared.core.effective import EffectiveLicense, effective_licenses
from shared.core.evaluate import evaluate
from tests import builders as seed
from tests.builders import TenantBuilder, seed_tenant


def licenses_of(b: TenantBuilder, user: str) -> dict[str, EffectiveLicense]:
    return {lic.sku_id: lic for lic in effective_licenses(b.build())[b.id(user)]}


def test_user_in_base_group_only_gets_nine_of_thirteen_plans() -> None:
    b = seed_tenant().member(seed.BASE, "ann")

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert len(e3.enabled_plans) == 9
    assert e3.disabled_plans == b.plan_ids(seed.E3, seed.BASE_DISABLED)


def test_user_in_base_and_teams_groups_gets_ten_of_thirteen_plans() -> None:
    b = seed_tenant().member(seed.BASE, "ann").member(seed.TEAMS, "ann")

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert len(e3.enabled_plans) == 10
    assert b.plan_id(seed.E3, "TEAMS1") in e3.enabled_plans
    assert e3.disabled_plans == b.plan_ids(seed.E3, ["YAMMER_ENTERPRISE", "SWAY", "Deskless"])


def test_user_in_teams_group_only_gets_one_of_thirteen_plans() -> None:
    b = seed_tenant().member(seed.TEAMS, "ann")

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert e3.enabled_plans == {b.plan_id(seed.E3, "TEAMS1")}
    assert len(e3.disabled_plans) == 12


def test_user_in_ems_group_gets_all_seven_ems_plans() -> None:
    b = seed_tenant().member(seed.EMS_GROUP, "ann")

    ems = licenses_of(b, "ann")[b.id(seed.EMS)]

    assert ems.enabled_plans == set(seed.EMS_PLANS.values())
    assert ems.disabled_plans == frozenset()


def test_enabled_and_disabled_plans_split_the_sku_exactly() -> None:
    b = seed_tenant().member(seed.BASE, "ann").member(seed.TEAMS, "ann")

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert e3.enabled_plans | e3.disabled_plans == set(seed.E3_PLANS.values())
    assert not e3.enabled_plans & e3.disabled_plans


def test_user_in_no_licensed_group_has_no_license() -> None:
    b = seed_tenant().group("Staff").member("Staff", "ann")

    assert licenses_of(b, "ann") == {}


def test_sku_granted_by_two_groups_and_directly_consumes_one_seat() -> None:
    b = seed_tenant().member(seed.BASE, "ann").member(seed.TEAMS, "ann").direct("ann", seed.E3)

    evaluation = evaluate(b.build())

    (ann,) = evaluation.users
    assert [lic.sku_id for lic in ann.licenses] == [seed.E3_SKU_ID]
    assert len(ann.licenses[0].paths) == 3
    assert next(s for s in evaluation.skus if s.sku.id == seed.E3_SKU_ID).demand == 1


def test_a_member_listed_twice_in_a_group_has_one_path_through_it() -> None:
    # a group's member list can repeat an entry (pages read twice, a merged export); the
    # user is still one member: one path, and a direct copy is covered by one group
    b = seed_tenant().member(seed.BASE, "ann", "ann").processed()
    b.direct("ann", seed.E3, disabled=seed.BASE_DISABLED)

    (ann,) = evaluate(b.build()).users

    assert [p.group_id for p in ann.licenses[0].paths] == [None, b.id(seed.BASE)]
    (redundant,) = [f for f in ann.findings if f.code == "RedundantDirectAssignment"]
    assert redundant.message.count(seed.BASE) == 1


def test_seat_demand_counts_users_not_paths() -> None:
    b = (
        seed_tenant()
        .member(seed.BASE, "ann", "bob")
        .member(seed.TEAMS, "ann", "cy")
        .direct("bob", seed.E3)
    )

    evaluation = evaluate(b.build())

    e3 = next(s for s in evaluation.skus if s.sku.id == seed.E3_SKU_ID)
    ems = next(s for s in evaluation.skus if s.sku.id == b.id(seed.EMS))
    assert (e3.demand, ems.demand) == (3, 0)


def test_nested_group_members_get_nothing_from_the_parent_group() -> None:
    b = seed_tenant().group("Sales").member("Sales", "ann").nested(seed.BASE, "Sales")

    assert licenses_of(b, "ann") == {}


def test_nested_group_member_keeps_what_its_own_group_grants() -> None:
    b = (
        seed_tenant()
        .group("Sales", {seed.E3: []})
        .member("Sales", "ann")
        .nested(seed.BASE, "Sales")
    )

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert [p.group_id for p in e3.paths] == [b.id("Sales")]
    assert e3.disabled_plans == frozenset()


def test_direct_assignment_is_a_path_of_its_own() -> None:
    b = seed_tenant().direct("ann", seed.E3, disabled=[p for p in seed.E3_PLANS if p != "SWAY"])

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert e3.direct_path is not None
    assert e3.group_paths == ()
    assert e3.enabled_plans == {b.plan_id(seed.E3, "SWAY")}


def test_direct_assignment_adds_plans_the_groups_disable() -> None:
    b = seed_tenant().member(seed.BASE, "ann").direct("ann", seed.E3, disabled=["SWAY", "TEAMS1"])

    e3 = licenses_of(b, "ann")[seed.E3_SKU_ID]

    assert len(e3.enabled_plans) == 11
    assert e3.disabled_plans == b.plan_ids(seed.E3, ["SWAY", "TEAMS1"])


def test_error_states_do_not_change_what_the_user_should_hold() -> None:
    healthy = seed_tenant().member(seed.BASE, "ann").member(seed.TEAMS, "ann").processed()
    failing = (
        seed_tenant()
        .member(seed.BASE, "ann")
        .member(seed.TEAMS, "ann")
        .state("ann", seed.E3, via=seed.BASE, state="Error", error="CountViolation")
        .state("ann", seed.E3, via=seed.TEAMS, state="ActiveWithError", error="Other")
    )

    assert licenses_of(failing, "ann") == licenses_of(healthy, "ann")


def test_states_from_groups_the_user_left_grant_nothing() -> None:
    b = seed_tenant().user("ann").state("ann", seed.E3, via=seed.BASE)

    assert licenses_of(b, "ann") == {}


def test_direct_assignment_of_an_unknown_sku_is_ignored() -> None:
    b = seed_tenant().direct("ann", "RETIRED_SKU")

    assert licenses_of(b, "ann") == {}


def test_group_license_of_an_unknown_sku_is_ignored_like_a_direct_one() -> None:
    b = TenantBuilder().sku("E3", 2).group("Old", {"E3": [], "RETIRED_SKU": []})
    b.member("Old", "ann").processed()

    (ann,) = evaluate(b.build()).users

    assert [lic.sku_id for lic in ann.licenses] == [b.id("E3")]


def test_users_with_the_same_paths_share_one_enabled_plan_set() -> None:
    b = seed_tenant().member(seed.BASE, "ann", "bob")

    everyone = effective_licenses(b.build())

    ann, bob = (everyone[b.id(u)][0] for u in ("ann", "bob"))
    assert ann.enabled_plans is bob.enabled_plans
