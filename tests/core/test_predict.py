"""Predicted assignment errors from a tenant's own error states (pure core)."""

from __future__ import annotations

from shared.catalog.capabilities import capabilities
from shared.catalog.plan_conflicts import plan_conflicts
from shared.core.evaluate import evaluate
from shared.core.findings import Names
from shared.core.predict import predict_errors
from shared.core.predict_evidence import conflicts_seen, prohibited_seen
from shared.core.whatif import AddMember, apply_changes, what_if
from tests.builders import TenantBuilder


def builder() -> TenantBuilder:
    return (
        TenantBuilder()
        .sku("A", plans=["PA"], seats=10)
        .sku("B", plans=["PB"], seats=10)
        .group("GA", licenses={"A": []})
        .group("GB", licenses={"B": []})
        .user("ann", location="DE")
        .user("bob", location="DE")
        .member("GA", "ann")
        .member("GB", "ann")
        .state("ann", "A", via="GA")
        .state("ann", "B", via="GB", error="MutuallyExclusiveViolation")
        .member("GA", "bob")
        .state("bob", "A", via="GA")
    )


def test_a_conflict_seen_in_the_tenant_is_learned_between_the_two_products() -> None:
    b = builder()
    seen = conflicts_seen(b.build())

    assert seen == {b.id("B"): frozenset({b.id("A")}), b.id("A"): frozenset({b.id("B")})}


def test_a_user_joining_the_other_group_is_predicted_to_fail_from_tenant_evidence() -> None:
    b = builder()
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("GB"), b.id("bob"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    assert [(e.user_id, e.code, e.source) for e in predictions.errors] == [
        (b.id("bob"), "MutuallyExclusiveViolation", "this tenant's licenseAssignmentStates")
    ]


def test_a_product_another_user_holds_at_the_location_is_not_predicted_prohibited_there() -> None:
    # dan's group failed for A at CU, and Entra fails its other product B too (all-or-none);
    # eve holds B at CU, so B is allowed there and carl may join GB
    b = (
        builder()
        .group("Bundle", licenses={"A": [], "B": []})
        .user("dan", location="CU")
        .user("eve", location="CU")
        .user("carl", location="CU")
        .member("Bundle", "dan")
        .state("dan", "A", via="Bundle", state="Error", error="ProhibitedInUsageLocationViolation")
        .state("dan", "B", via="Bundle", state="Error", error="ProhibitedInUsageLocationViolation")
        .member("GB", "eve")
        .state("eve", "B", via="GB")
    )
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("GB"), b.id("carl"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    assert prohibited_seen(tenant) == {b.id("A"): frozenset({"CU"})}
    assert [e.code for e in predictions.errors if e.user_id == b.id("carl")] == []


def test_a_product_failing_only_with_its_groups_conflicting_product_is_not_learned() -> None:
    """Ann holds SharePoint Plan 1 (Other) directly; the Bundle group's E3 conflicts with it and
    Entra fails Visio with it (all-or-none): Visio conflicts with nothing, so Bob, who holds
    Other too, may join the Visio group without a warning."""
    b = (
        TenantBuilder()
        .sku("Other", {"SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1"})
        .sku("E3", {"SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72"})
        .sku("Visio", 2)
        .group("Bundle", licenses={"E3": [], "Visio": []})
        .group("VisioUsers", licenses={"Visio": []})
        .user("ann", location="DE")
        .user("bob", location="DE")
        .member("Bundle", "ann")
        .direct("ann", "Other")
        .state("ann", "E3", via="Bundle", state="Error", error="MutuallyExclusiveViolation")
        .state("ann", "Visio", via="Bundle", state="Error", error="MutuallyExclusiveViolation")
        .direct("bob", "Other")
    )
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("VisioUsers"), b.id("bob"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), plan_conflicts(), Names(after_tenant)
    )

    assert predictions.errors == ()
    assert b.id("Visio") not in conflicts_seen(tenant, plan_conflicts())
    assert conflicts_seen(tenant, plan_conflicts())[b.id("E3")] == frozenset({b.id("Other")})


def test_a_seat_shortfall_of_a_lapsed_subscription_is_predicted_with_renewing_first() -> None:
    b = (
        builder()
        .sku("C", plans=["PC"], seats=1, consumed=1, warning=2)
        .group("GC", licenses={"C": []})
    )
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("GC"), b.id("bob"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    (error,) = predictions.errors
    assert error.code == "CountViolation"
    assert "Renew the expired subscription of C: 1 of its 2 seat(s) in the grace period" in (
        error.message
    )
    assert "Buy" not in error.message


def _sharepoint_tenant() -> TenantBuilder:
    """Ann holds SharePoint (Plan 1) directly through Other; E3's SharePoint (Plan 2)
    conflicts with it (the documented E1 + E3 example). Bob holds nothing."""
    return (
        TenantBuilder()
        .sku("Other", {"SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1"})
        .sku("E3", {"SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72"}, seats=1)
        .sku("Visio", 2, seats=1)
        .group("Bundle", licenses={"E3": [], "Visio": []})
        .user("ann", location="DE")
        .user("bob", location="DE")
        .direct("ann", "Other")
    )


def test_a_user_whose_group_fails_on_a_plan_conflict_takes_no_seat_of_its_products() -> None:
    """Entra assigns none of the Bundle's products to Ann (MutuallyExclusiveViolation,
    all-or-none), so the one free seat of E3 and of Visio goes to Bob: no CountViolation."""
    b = _sharepoint_tenant()
    tenant = b.build()
    after_tenant = apply_changes(
        tenant, [AddMember(b.id("Bundle"), b.id("ann")), AddMember(b.id("Bundle"), b.id("bob"))]
    )

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), plan_conflicts(), Names(after_tenant)
    )

    assert [(e.user_id, e.code, e.severity) for e in predictions.errors] == [
        (b.id("ann"), "MutuallyExclusiveViolation", "error")
    ]
    assert {(n.sku_id, n.needed, n.free, n.short) for n in predictions.seats} == {
        (b.id("E3"), 1, 1, 0),
        (b.id("Visio"), 1, 1, 0),
    }


def test_a_user_graph_still_shows_holding_the_product_needs_no_new_seat() -> None:
    """Ann left G, and Entra has not removed her E3 yet (Graph: Active from G, the one seat
    consumed). Adding her back keeps the seat she holds: no CountViolation."""
    b = (
        TenantBuilder()
        .sku("E3", 2, seats=1, consumed=1)
        .group("G", licenses={"E3": []})
        .user("ann", location="DE")
        .state("ann", "E3", via="G")
    )
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("G"), b.id("ann"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    assert predictions.errors == ()
    assert predictions.seats == ()


def test_a_product_users_hold_together_with_the_failing_one_is_not_learned_to_conflict() -> None:
    """Ann's E3 fails in MutuallyExclusiveViolation while she holds Other and EMS: either may
    be the other side. Bob holds E3 and EMS together, every plan enabled, without error: EMS
    does not conflict with E3, so Carl (EMS) may join the E3 group without a warning, while
    Dan (Other) is still warned."""
    b = (
        TenantBuilder()
        .sku("E3", 2)
        .sku("EMS", 2)
        .sku("Other", 2)
        .group("G", licenses={"E3": []})
        .group("GE", licenses={"EMS": []})
        .member("G", "ann", "bob")
        .member("GE", "ann", "bob", "carl")
        .direct("ann", "Other")
        .state("ann", "E3", via="G", state="Error", error="MutuallyExclusiveViolation")
        .state("ann", "EMS", via="GE")
        .state("bob", "E3", via="G")
        .state("bob", "EMS", via="GE")
        .state("carl", "EMS", via="GE")
        .direct("dan", "Other")
    )
    tenant = b.build()
    after_tenant = apply_changes(
        tenant, [AddMember(b.id("G"), b.id("carl")), AddMember(b.id("G"), b.id("dan"))]
    )

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    assert conflicts_seen(tenant)[b.id("E3")] == frozenset({b.id("Other")})
    assert [(e.user_id, e.code, e.severity) for e in predictions.errors] == [
        (b.id("dan"), "MutuallyExclusiveViolation", "warning")
    ]


def test_seats_in_warning_that_users_hold_are_not_offered_by_renewing() -> None:
    """An expired subscription: no enabled seat, 2 in warning, both held (consumed 2).
    Renewing gives them back as enabled seats, which the two users already take: the user
    joining needs one more bought, not 'renew: 1 of its 2 seats cover the shortfall'
    (Partner Center: available units = active + warning - consumed)."""
    b = (
        builder()
        .sku("C", plans=["PC"], seats=0, consumed=2, warning=2)
        .group("GC", licenses={"C": []})
        .member("GC", "ann")
        .state("ann", "C", via="GC")
        .user("eve", location="DE")
        .member("GC", "eve")
        .state("eve", "C", via="GC")
    )
    tenant = b.build()
    after_tenant = apply_changes(tenant, [AddMember(b.id("GC"), b.id("bob"))])

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), (), Names(after_tenant)
    )

    (error,) = [e for e in predictions.errors if e.code == "CountViolation"]
    assert "Renew" not in error.message
    assert "Buy 1 more seat(s) of C" in error.message


def test_a_product_the_user_holds_only_through_a_failing_path_cannot_conflict() -> None:
    """Bob's only path to Other (SharePoint Plan 1) is the group GO, in state Error for want of
    a seat: he holds none of Other's plans, so E3's SharePoint (Plan 2) from the Bundle
    conflicts with nothing he holds, and Entra assigns it. Ann holds Other directly: a certain
    conflict for her."""
    b = (
        _sharepoint_tenant()
        .group("GO", licenses={"Other": []})
        .member("GO", "bob")
        .state("bob", "Other", via="GO", state="Error", error="CountViolation")
    )
    tenant = b.build()
    after_tenant = apply_changes(
        tenant, [AddMember(b.id("Bundle"), b.id("ann")), AddMember(b.id("Bundle"), b.id("bob"))]
    )

    predictions = predict_errors(
        tenant, evaluate(tenant), evaluate(after_tenant), plan_conflicts(), Names(after_tenant)
    )

    assert [(e.user_id, e.code, e.severity) for e in predictions.errors] == [
        (b.id("ann"), "MutuallyExclusiveViolation", "error")
    ]


def test_the_seats_table_keeps_a_product_whose_only_new_holder_would_fail() -> None:
    """Ann joins the Bundle and fails (E3's SharePoint conflicts with the Other she holds):
    she takes no seat, so the demand does not change, and the SEATS row says why."""
    b = _sharepoint_tenant()
    tenant = b.build()

    result = what_if(
        tenant,
        [AddMember(b.id("Bundle"), b.id("ann"))],
        capabilities().plans,
        conflicts=plan_conflicts(),
    )

    assert {(s.sku_id, s.demand_before, s.demand_after, s.failing) for s in result.seats} == {
        (b.id("E3"), 0, 0, 1),
        (b.id("Visio"), 0, 0, 1),
    }
