"""Findings: Graph's reported errors with cause and remedy, and what Graph does not say."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog.plan_conflicts import plan_conflicts
from shared.core import findings as codes
from shared.core.evaluate import evaluate
from shared.core.findings import ADMIN_CENTER_LICENSES, ERROR, INFO, WARNING, Finding
from shared.core.model import Tenant
from shared.core.reprocess import PROCESSING_COMPLETE, decide_reprocess
from shared.core.reprocess_plan import AlertInstead, ReprocessNow, TenantFacts
from shared.core.user_decisions import decide_users
from tests.builders import (
    BASE,
    BASE_DISABLED,
    E3,
    E3_PLANS,
    E3_SKU_ID,
    EMS,
    EMS_GROUP,
    EMS_PLANS,
    EMS_SKU_ID,
    TEAMS,
    TenantBuilder,
    guid,
    seed_tenant,
)

REPORTED = [
    "CountViolation",
    "MutuallyExclusiveViolation",
    "DependencyViolation",
    "ProhibitedInUsageLocationViolation",
    "UniquenessViolation",
    "Other",
]


def findings_of(source: TenantBuilder | Tenant, code: str | None = None) -> list[Finding]:
    tenant = source.build() if isinstance(source, TenantBuilder) else source
    found = evaluate(tenant).findings()
    return [f for f in found if code is None or f.code == code]


def only(source: TenantBuilder | Tenant, code: str) -> Finding:
    (finding,) = findings_of(source, code)
    return finding


def ann_in_base(
    *, location: str | None = "DE", enabled: bool = True, synced: bool = False
) -> TenantBuilder:
    """The seed tenant with Ann as a direct member of the Base group (no states yet)."""
    b = seed_tenant().user("ann", location=location, enabled=enabled, synced=synced)
    return b.member(BASE, "ann")


# --------------------------------------------------------------------------- reported errors


@pytest.mark.parametrize("error", REPORTED)
def test_each_reported_error_on_a_group_path_is_passed_on(error: str) -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error=error)

    finding = only(b, error)

    assert (finding.subject, finding.sku_id, finding.group_id) == (
        b.id("ann"),
        E3_SKU_ID,
        b.id(BASE),
    )
    assert finding.severity == ERROR
    assert finding.message.startswith("Ann does not have ENTERPRISEPACK from 'Licensing_")


@pytest.mark.parametrize("error", [None, "None", ""])
def test_a_group_path_in_state_error_without_an_error_code_is_reported_not_silent(
    error: str | None,
) -> None:
    # Graph's state says the user lacks the group's products; a missing error code (null, or
    # the "None" PowerShell samples show) must not make the failure disappear
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error=error)

    finding = only(b, codes.OTHER)

    assert finding.severity == ERROR
    assert finding.group_id == b.id(BASE)
    assert "Ann does not have ENTERPRISEPACK from 'Licensing_Office365_E3_Base'" in (
        finding.message
    )
    assert "state Error without naming the error" in finding.message
    assert "(None)" not in finding.message
    assert "audit log" in finding.remedy


@pytest.mark.parametrize("error", REPORTED)
def test_each_reported_error_on_a_direct_assignment_is_passed_on(error: str) -> None:
    b = seed_tenant().direct("ann", E3, state="Error", error=error)

    finding = only(b, error)

    assert finding.group_id is None
    assert "from a direct assignment" in finding.message


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        ("CountViolation", "assign the license again"),
        ("ProhibitedInUsageLocationViolation", "assign the license again"),
        ("UniquenessViolation", "assign the license again"),
        ("Other", "assign the license again"),
        ("DependencyViolation", "remove the direct assignment again"),
    ],
)
def test_an_error_on_a_direct_assignment_is_not_sent_to_a_reprocess(error: str, retry: str) -> None:
    """reprocessLicenseAssignment re-runs group-based assignments only: a failed direct
    assignment (or removal) is made again once its cause is fixed."""
    b = seed_tenant().direct("ann", E3, state="Error", error=error)

    remedy = only(b, error).remedy

    assert "reprocess" not in remedy
    assert retry in remedy


def test_the_older_spelling_others_is_reported_as_other() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="Others")

    finding = only(b, "Other")

    assert "unclassified error (Others)" in finding.message
    assert findings_of(b, "Others") == []


def test_an_unknown_error_value_is_reported_as_unclassified() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="BrandNewViolation")

    finding = only(b, "BrandNewViolation")

    assert "unclassified error (BrandNewViolation)" in finding.message
    assert "audit log" in finding.remedy


@pytest.mark.parametrize("no_error", [None, "", "None", "none", " None "])
def test_none_null_and_empty_mean_no_error(no_error: str | None) -> None:
    b = ann_in_base().state("ann", E3, via=BASE, error=no_error)

    assert findings_of(b) == []


def test_state_error_is_an_error_and_active_with_error_a_warning() -> None:
    failed = ann_in_base().state("ann", E3, via=BASE, state="Error", error="CountViolation")
    partial = ann_in_base().state(
        "ann", E3, via=BASE, state="ActiveWithError", error="CountViolation"
    )

    hard, soft = only(failed, "CountViolation"), only(partial, "CountViolation")

    assert (hard.severity, soft.severity) == (ERROR, WARNING)
    assert "works, but a later change failed" in soft.message


def test_failed_product_of_a_multi_product_group_explains_all_or_none() -> None:
    b = (
        seed_tenant()
        .group("Bundle", {E3: [], EMS: []})
        .member("Bundle", "ann")
        .state("ann", E3, via="Bundle", state="Error", error="CountViolation")
        .state("ann", EMS, via="Bundle", state="Error", error="CountViolation")
    )

    messages = [f.message for f in findings_of(b, "CountViolation")]

    assert len(messages) == 2
    assert all("none of that group's 2 products are assigned" in m for m in messages)


def bundle_short_of_e3() -> TenantBuilder:
    """Ann in a group of E3 (no free seat) and EMS (free seats): Entra fails both (all-or-none)."""
    return (
        seed_tenant()
        .sku(E3, E3_PLANS, seats=1, consumed=1, sku_id=E3_SKU_ID)
        .group("Bundle", {E3: [], EMS: []})
        .member("Bundle", "ann")
        .state("ann", E3, via="Bundle", state="Error", error="CountViolation")
        .state("ann", EMS, via="Bundle", state="Error", error="CountViolation")
    )


def test_a_product_with_free_seats_failing_with_its_group_names_the_product_short_of_seats() -> (
    None
):
    b = bundle_short_of_e3()

    by_sku = {f.sku_id: f for f in findings_of(b, "CountViolation")}
    ems, e3 = by_sku[b.id(EMS)], by_sku[E3_SKU_ID]

    assert "no free seats of ENTERPRISEPACK were left (EMS itself has free seats" in ems.message
    assert ems.remedy.startswith("Buy or free seats of ENTERPRISEPACK (")
    assert "no free seats of ENTERPRISEPACK were left." in e3.message
    assert e3.remedy.startswith("Buy or free seats of ENTERPRISEPACK (")


def test_a_product_with_free_seats_is_not_reprocessed_while_its_group_waits_for_another() -> None:
    tenant = bundle_short_of_e3().build()
    found = evaluate(tenant).findings()
    free = {s.id: s.prepaid.enabled - s.consumed for s in tenant.skus.values()}

    plan = decide_reprocess(found, {}, TenantFacts(datetime.now(UTC), free, {}))

    assert plan.to_reprocess == []


def test_a_mass_failure_of_a_product_with_free_seats_names_the_product_short_of_seats() -> None:
    b = bundle_short_of_e3().member("Bundle", "bob", "cid")
    for user in ("bob", "cid"):
        b.state(user, E3, via="Bundle", state="Error", error="CountViolation")
        b.state(user, EMS, via="Bundle", state="Error", error="CountViolation")
    tenant = b.build()
    free = {s.id: s.prepaid.enabled - s.consumed for s in tenant.skus.values()}

    plan = decide_reprocess(
        evaluate(tenant).findings(), {}, TenantFacts(datetime.now(UTC), free, {}, group_threshold=2)
    )

    (ems,) = [g for g in plan.groups if g.sku_id == b.id(EMS)]
    assert f"buy or free seats of SKU {E3_SKU_ID}, the group's other product" in ems.reason


def bundle_with_e3_held_elsewhere(*, ems_free: int = 0) -> TenantBuilder:
    """Ann holds E3 from Base and is in a group of E3 and EMS; both products are at full
    consumption, EMS with `ems_free` seats more: Entra fails the group's two (all-or-none)."""
    return (
        seed_tenant()
        .sku(E3, E3_PLANS, seats=1, consumed=1, sku_id=E3_SKU_ID)
        .sku(EMS, EMS_PLANS, seats=1 + ems_free, consumed=1, sku_id=EMS_SKU_ID)
        .group("Bundle", {E3: [], EMS: []})
        .member(BASE, "ann")
        .member("Bundle", "ann")
        .state("ann", E3, via=BASE)
        .state("ann", E3, via="Bundle", state="Error", error="CountViolation")
        .state("ann", EMS, via="Bundle", state="Error", error="CountViolation")
    )


def test_a_count_violation_of_a_product_the_user_holds_elsewhere_names_the_product_short() -> None:
    # Ann holds E3 from Base: a second path takes no seat, so E3's full consumption is not why
    # the group failed, and buying E3 would not help; EMS is short
    b = bundle_with_e3_held_elsewhere()

    by_sku = {f.sku_id: f for f in findings_of(b, "CountViolation")}
    e3 = by_sku[E3_SKU_ID]

    assert "no free seats of EMS were left (Ann already holds ENTERPRISEPACK from " in e3.message
    assert e3.remedy.startswith("Buy or free seats of EMS (")
    assert "ENTERPRISEPACK" not in e3.remedy
    assert e3.evidence == (f"{codes.SEATS_OF}{EMS_SKU_ID}", codes.HELD_ELSEWHERE)


def test_a_group_waiting_for_seats_of_its_other_product_is_reprocessed_once_it_has_them() -> None:
    # EMS now has a free seat, E3 still none: Ann needs no E3 seat, so she is reprocessed
    tenant = bundle_with_e3_held_elsewhere(ems_free=1).build()
    found = evaluate(tenant).findings()

    plan = decide_users(tenant, found, {}, {}, now=datetime.now(UTC), processing={})

    assert plan.to_reprocess == [guid("user", "ann")]


def e3_short_with(*, warning: int = 0, suspended: int = 0, users: int = 1) -> Tenant:
    """Users in Base waiting for E3 (CountViolation) while its seats are all taken and more
    are in `warning` (a lapsed subscription's grace period) or `suspended` (cancelled)."""
    b = seed_tenant().sku(
        E3, E3_PLANS, seats=1, consumed=1, warning=warning, suspended=suspended, sku_id=E3_SKU_ID
    )
    for user in ("ann", "bob", "cid", "dan")[:users]:
        b.user(user).member(BASE, user).state(
            user, E3, via=BASE, state="Error", error="CountViolation"
        )
    return b.build()


@pytest.mark.parametrize(
    ("warning", "suspended", "first_step"),
    [
        (3, 0, "Renew the expired subscription of ENTERPRISEPACK: its 3 seat(s) in the grace"),
        (0, 2, "Reactivate the cancelled subscription of ENTERPRISEPACK: its 2 suspended seat(s)"),
    ],
)
def test_a_count_violation_with_lapsed_seats_says_renew_or_reactivate_before_buying(
    warning: int, suspended: int, first_step: str
) -> None:
    tenant = e3_short_with(warning=warning, suspended=suspended)
    (finding,) = findings_of(tenant, "CountViolation")

    assert finding.remedy.startswith(first_step)
    assert "; buy or free seats of ENTERPRISEPACK (" in finding.remedy
    assert "if those are not enough, then reprocess the user" in finding.remedy


def test_the_policy_alert_for_lapsed_seats_says_renew_before_buying() -> None:
    tenant = e3_short_with(warning=3)
    found = evaluate(tenant).findings()

    plan = decide_users(tenant, found, {}, {}, now=datetime.now(UTC), processing={})

    (alert,) = plan.alerts
    assert f"no free seats of {E3_SKU_ID}: renew the expired subscription of {E3_SKU_ID}" in (
        alert.reason
    )


def test_the_group_alert_for_lapsed_seats_says_renew_before_buying() -> None:
    tenant = e3_short_with(suspended=5, users=4)
    found = evaluate(tenant).findings()

    facts = TenantFacts(
        datetime.now(UTC),
        {E3_SKU_ID: 0},
        {},
        group_threshold=2,
        prepaid={s.id: s.prepaid for s in tenant.skus.values()},
    )

    plan = decide_reprocess(found, {}, facts)

    (group,) = plan.groups
    assert f"reactivate the cancelled subscription of SKU {E3_SKU_ID}: its 5" in group.reason


def test_a_product_with_free_seats_failing_with_its_group_is_alerted_on_the_others_seats() -> None:
    tenant = bundle_short_of_e3().build()
    found = [f for f in evaluate(tenant).findings() if f.sku_id == tenant.skus[E3_SKU_ID].id]
    ems = [f for f in evaluate(tenant).findings() if f.code == "CountViolation" and f not in found]

    plan = decide_users(tenant, ems, {}, {}, now=datetime.now(UTC), processing={})

    (alert,) = plan.alerts
    assert f"no free seats of {E3_SKU_ID}:" in alert.reason


def test_single_product_group_and_warnings_do_not_claim_all_or_none() -> None:
    single = ann_in_base().state("ann", E3, via=BASE, state="Error", error="CountViolation")
    bundle = (
        seed_tenant()
        .group("Bundle", {E3: [], EMS: []})
        .member("Bundle", "ann")
        .processed()
        .state("ann", E3, via="Bundle", state="ActiveWithError", error="Other")
    )

    assert "all-or-none" not in only(single, "CountViolation").message
    assert "all-or-none" not in only(bundle, "Other").message


def test_count_violation_says_buy_seats_in_the_admin_center_then_reprocess() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="CountViolation")

    remedy = only(b, "CountViolation").remedy

    assert ADMIN_CENTER_LICENSES in remedy
    assert "reprocess the user" in remedy
    assert "does not retry" in remedy


def test_mutually_exclusive_names_the_users_other_working_paths() -> None:
    b = (
        ann_in_base()
        .direct("ann", EMS)
        .state("ann", E3, via=BASE, state="Error", error="MutuallyExclusiveViolation")
    )

    finding = only(b, "MutuallyExclusiveViolation")

    assert finding.evidence == (f"{b.id(EMS)}:direct",)
    assert "never resolves it on its own" in finding.remedy
    assert "Entra admin center (Groups > Members)" in finding.remedy


def test_mutually_exclusive_is_reprocessed_once_the_conflicting_plan_is_disabled() -> None:
    """The remedy's first fix, disabling the conflicting plan in the other assignment, is a
    change the reprocess policy sees (Entra does not retry the failed group path by itself)."""

    def conflict(disabled: tuple[str, ...]) -> Finding:
        b = (
            ann_in_base()
            .direct("ann", EMS, disabled=disabled)
            .state("ann", E3, via=BASE, state="Error", error="MutuallyExclusiveViolation")
        )
        return only(b, "MutuallyExclusiveViolation")

    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    processed = {conflict(()).group_id or "": PROCESSING_COMPLETE}
    first = decide_reprocess([conflict(())], {}, TenantFacts(at, {}, processed))
    assert isinstance(first.users[conflict(()).subject], AlertInstead)

    fixed = conflict(("AAD_PREMIUM",))
    later = TenantFacts(at + timedelta(hours=1), {}, processed)
    plan = decide_reprocess([fixed], first.observations(), later)

    assert plan.to_reprocess == [fixed.subject]


EXCHANGE_PLAN_1 = {"EXCHANGE_S_STANDARD": "9aaf7827-d63c-4b61-89c3-182f06f82e5c"}
SHAREPOINT_PLAN_1 = {"SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1"}
E3_EXCHANGE_SHAREPOINT = {
    "EXCHANGE_S_ENTERPRISE": "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72",
}


def exchange_conflict(other_plans: Mapping[str, str] = EXCHANGE_PLAN_1) -> Tenant:
    """Ann holds a product with `other_plans` directly; E3 (Exchange Online Plan 2 and
    SharePoint Plan 2) from the Base group failed with MutuallyExclusiveViolation."""
    return (
        TenantBuilder()
        .sku("Other", other_plans)
        .sku("E3", E3_EXCHANGE_SHAREPOINT)
        .group("Base", ["E3"])
        .member("Base", "ann")
        .direct("ann", "Other")
        .state("ann", "E3", via="Base", state="Error", error="MutuallyExclusiveViolation")
        .build()
    )


def conflict_finding(tenant: Tenant) -> Finding:
    found = evaluate(tenant, conflicts=plan_conflicts()).findings()
    (finding,) = [f for f in found if f.code == codes.MUTUALLY_EXCLUSIVE]
    return finding


def test_a_lingering_exchange_plan_1_and_2_conflict_is_to_be_reprocessed() -> None:
    """Microsoft now allows Exchange Online Plan 1 and Plan 2 together and says to reprocess a
    conflict between them that lingers (licensing-groups-resolve-problems)."""
    finding = conflict_finding(exchange_conflict())

    assert finding.remedy.startswith("Reprocess the user: Microsoft says to reprocess")
    assert "licensing-groups-resolve-problems" in finding.remedy
    assert "never resolves" not in finding.remedy
    assert "now allows EXCHANGE_S_ENTERPRISE with EXCHANGE_S_STANDARD together" in finding.message
    assert "liftedConflict=EXCHANGE_S_ENTERPRISE+EXCHANGE_S_STANDARD" in finding.evidence


def test_a_lingering_exchange_conflict_is_reprocessed_once_without_waiting_for_a_change() -> None:
    finding = conflict_finding(exchange_conflict())
    at = datetime(2026, 3, 2, 12, tzinfo=UTC)

    first = decide_reprocess([finding], {}, TenantFacts(at, {}, {}))
    assert first.to_reprocess == [finding.subject]

    done = first.users[finding.subject]
    assert isinstance(done, ReprocessNow)
    later = TenantFacts(at + timedelta(days=1), {}, {})
    again = decide_reprocess([finding], {finding.subject: done.attempts(at)}, later)
    assert isinstance(again.users[finding.subject], AlertInstead)  # it came back: a person


def test_a_conflict_an_active_pair_also_explains_is_still_for_the_admin() -> None:
    """E1 (direct) and E3: SharePoint Plan 1 and Plan 2 still conflict, whatever Exchange does."""
    finding = conflict_finding(exchange_conflict({**EXCHANGE_PLAN_1, **SHAREPOINT_PLAN_1}))

    assert "never resolves it on its own" in finding.remedy
    assert not any(e.startswith(codes.LIFTED_CONFLICT) for e in finding.evidence)


def test_a_conflict_names_the_plans_and_the_license_the_user_holds_the_other_one_from() -> None:
    """E1-like 'Other' (direct) holds SharePoint Plan 1; E3 from Base brings Plan 2: the admin
    is told which two plans clash and which assignment holds the other, not only 'a plan'."""
    finding = conflict_finding(exchange_conflict({**EXCHANGE_PLAN_1, **SHAREPOINT_PLAN_1}))

    assert (
        "SHAREPOINTENTERPRISE (in E3) conflicts with SHAREPOINTSTANDARD, which the user holds "
        "from Other (a direct assignment)" in finding.message
    )
    assert "EXCHANGE_S_STANDARD" not in finding.message  # lifted: no longer a conflict
    assert (
        "disable SHAREPOINTENTERPRISE in the E3 that 'Base' assigns, or SHAREPOINTSTANDARD in "
        "the user's direct assignment of Other (" in finding.remedy
    )


def bundle_conflict(other_plans: Mapping[str, str]) -> Tenant:
    """Ann holds a product with `other_plans` directly; the Bundle group assigns E3 (Exchange
    Online Plan 2, SharePoint Plan 2) and Visio, which conflicts with nothing: Entra fails both
    (all-or-none) and gives Visio the group's failure."""
    return (
        TenantBuilder()
        .sku("Other", other_plans)
        .sku("E3", E3_EXCHANGE_SHAREPOINT)
        .sku("Visio", 2)
        .group("Bundle", ["E3", "Visio"])
        .member("Bundle", "ann")
        .direct("ann", "Other")
        .state("ann", "E3", via="Bundle", state="Error", error="MutuallyExclusiveViolation")
        .state("ann", "Visio", via="Bundle", state="Error", error="MutuallyExclusiveViolation")
        .build()
    )


def bundle_conflicts(tenant: Tenant) -> dict[str, Finding]:
    found = evaluate(tenant, conflicts=plan_conflicts()).findings()
    return {
        tenant.skus[f.sku_id or ""].part_number: f
        for f in found
        if f.code == codes.MUTUALLY_EXCLUSIVE
    }


def test_a_product_failing_with_its_group_names_the_product_that_conflicts() -> None:
    by_product = bundle_conflicts(bundle_conflict(SHAREPOINT_PLAN_1))
    visio, e3 = by_product["Visio"], by_product["E3"]

    assert "a service plan of E3 conflicts with a plan the user already holds" in visio.message
    assert "(Visio itself conflicts with none of the user's licenses, but Entra assigns" in (
        visio.message
    )
    assert "a service plan of E3 conflicts" in e3.message
    assert visio.evidence == (*e3.evidence, f"{codes.FAILED_WITH}{e3.sku_id}")
    assert codes.watched_evidence(visio) == codes.watched_evidence(e3)


def test_a_product_failing_with_its_group_for_a_lifted_conflict_is_reprocessed_like_it() -> None:
    """The group's product in a conflict Microsoft has lifted is reprocessed once; its sibling
    said 'decide which license wins' and waited for a change that never comes."""
    by_product = bundle_conflicts(bundle_conflict(EXCHANGE_PLAN_1))
    visio, e3 = by_product["Visio"], by_product["E3"]

    assert visio.evidence == (*e3.evidence, f"{codes.FAILED_WITH}{e3.sku_id}")
    assert codes.watched_evidence(visio) == codes.watched_evidence(e3)
    assert visio.remedy.startswith("Reprocess the user: Microsoft says to reprocess")
    assert "now allows EXCHANGE_S_ENTERPRISE with EXCHANGE_S_STANDARD together" in visio.message
    plan = decide_reprocess([visio], {}, TenantFacts(datetime.now(UTC), {}, {}))
    assert plan.to_reprocess == [visio.subject]


def bundle_at(location: str, *, e3_works_there: bool) -> TenantBuilder:
    """Ann at `location` in a group of E3 and EMS, both failing there (all-or-none); with
    `e3_works_there`, Bob at the same location holds E3 from the Base group."""
    b = (
        seed_tenant()
        .group("Bundle", {E3: [], EMS: []})
        .user("ann", location=location)
        .member("Bundle", "ann")
        .state("ann", E3, via="Bundle", state="Error", error="ProhibitedInUsageLocationViolation")
        .state("ann", EMS, via="Bundle", state="Error", error="ProhibitedInUsageLocationViolation")
    )
    if e3_works_there:
        b.user("bob", location=location).member(BASE, "bob").state("bob", E3, via=BASE)
    return b


def test_a_product_that_works_at_the_location_names_the_groups_prohibited_product() -> None:
    b = bundle_at("CU", e3_works_there=True)

    by_sku = {f.sku_id: f for f in findings_of(b, codes.PROHIBITED_IN_USAGE_LOCATION)}
    e3, ems = by_sku[E3_SKU_ID], by_sku[b.id(EMS)]

    assert "EMS may not be used in usage location CU (ENTERPRISEPACK itself works there" in (
        e3.message
    )
    assert "Entra assigns a group's products all or none" in e3.message
    assert "EMS may not be used in usage location CU." in ems.message
    assert e3.evidence == ("usageLocation=CU", f"{codes.FAILED_WITH}{b.id(EMS)}")
    assert codes.watched_evidence(e3) == ems.evidence == ("usageLocation=CU",)


def test_the_policy_alert_for_a_product_failing_with_its_group_names_the_conflicting_one() -> None:
    by_product = bundle_conflicts(bundle_conflict(SHAREPOINT_PLAN_1))
    visio, e3 = by_product["Visio"], by_product["E3"]

    plan = decide_reprocess([visio], {}, TenantFacts(datetime.now(UTC), {}, {}))

    (alert,) = plan.alerts
    assert f"a plan of {e3.sku_id} conflicts with the user's other licenses" in alert.reason
    assert f"({visio.sku_id} fails with it: all-or-none)" in alert.reason
    assert alert.observe[0].evidence == e3.evidence  # decided alike: one change, one reprocess


def test_the_policy_alert_for_a_product_failing_with_its_group_names_the_prohibited_one() -> None:
    """Which product the location prohibits depends on other users (where it works): the alert
    names it, but the evidence the policy watches for a change stays the usage location, so
    Bob leaving causes no reprocess."""
    b = bundle_at("CU", e3_works_there=True)
    e3 = next(
        f for f in findings_of(b, codes.PROHIBITED_IN_USAGE_LOCATION) if f.sku_id == E3_SKU_ID
    )

    plan = decide_reprocess([e3], {}, TenantFacts(datetime.now(UTC), {}, {}))

    (alert,) = plan.alerts
    assert f"does not allow {b.id(EMS)} ({E3_SKU_ID} fails with it: all-or-none)" in alert.reason
    assert alert.observe[0].evidence == ("usageLocation=CU",)


def test_without_evidence_of_where_a_product_works_each_names_its_own_product() -> None:
    b = bundle_at("CU", e3_works_there=False)

    by_sku = {f.sku_id: f for f in findings_of(b, codes.PROHIBITED_IN_USAGE_LOCATION)}

    assert "ENTERPRISEPACK may not be used in usage location CU." in by_sku[E3_SKU_ID].message


def test_without_the_conflicts_table_a_plan_conflict_is_for_the_admin() -> None:
    (finding,) = findings_of(exchange_conflict(), codes.MUTUALLY_EXCLUSIVE)

    assert "never resolves it on its own" in finding.remedy


def test_mutually_exclusive_on_a_synced_group_sends_the_admin_to_on_premises_ad() -> None:
    b = (
        seed_tenant()
        .group("Synced", {E3: []}, synced=True)
        .member("Synced", "ann")
        .state("ann", E3, via="Synced", state="Error", error="MutuallyExclusiveViolation")
    )

    remedy = only(b, "MutuallyExclusiveViolation").remedy

    assert "on-premises Active Directory" in remedy
    assert "Entra Connect" in remedy


def test_prohibited_location_names_the_location_and_keeps_it_as_evidence() -> None:
    b = ann_in_base(location="CU").state(
        "ann", E3, via=BASE, state="Error", error="ProhibitedInUsageLocationViolation"
    )

    finding = only(b, "ProhibitedInUsageLocationViolation")

    assert "usage location CU" in finding.message
    assert finding.evidence == ("usageLocation=CU",)
    assert "Microsoft 365 admin center (Users > Active users" in finding.remedy


def test_prohibited_location_of_a_user_without_one_names_the_tenant_country() -> None:
    b = ann_in_base(location=None).state(
        "ann", E3, via=BASE, state="Error", error="ProhibitedInUsageLocationViolation"
    )

    finding = only(b, "ProhibitedInUsageLocationViolation")

    # not "usage location DE": the admin finds the user's usage location empty
    assert "may not be used in the tenant's country (DE), which Entra uses for a user" in (
        finding.message
    )
    assert finding.remedy.startswith("Set the user's usage location to where they work (")
    assert finding.evidence == ("usageLocation=",)


@pytest.mark.parametrize("location", ["CU", None])
def test_usage_location_of_a_synced_user_is_fixed_in_the_ad_attribute_entra_connect_maps(
    location: str | None,
) -> None:
    # Entra Connect fills usageLocation from on-premises msExchUsageLocation; AD has no
    # attribute named usageLocation, and a cloud value stands while msExchUsageLocation is empty
    b = ann_in_base(location=location, synced=True).state(
        "ann", E3, via=BASE, state="Error", error="ProhibitedInUsageLocationViolation"
    )

    remedies = [f.remedy for f in findings_of(b) if "usage location" in f.remedy]

    assert remedies
    for remedy in remedies:
        assert "msExchUsageLocation in on-premises Active Directory" in remedy
        assert "usageLocation in on-premises" not in remedy
        assert "while msExchUsageLocation is empty" in remedy


def test_uniqueness_violation_says_how_to_find_the_object_that_holds_the_address() -> None:
    # the duplicate may sit on the other object: Microsoft's page shows how to find it
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="UniquenessViolation")

    remedy = only(b, "UniquenessViolation").remedy

    assert "Get-Recipient -Filter \"EmailAddresses -eq '<address>'\"" in remedy
    assert "from one of the two" in remedy
    assert remedy.endswith("then reprocess the user.")


def test_uniqueness_violation_for_a_synced_user_is_fixed_on_premises() -> None:
    b = ann_in_base(synced=True).state(
        "ann", E3, via=BASE, state="Error", error="UniquenessViolation"
    )

    remedy = only(b, "UniquenessViolation").remedy

    assert "proxyAddresses in on-premises Active Directory" in remedy
    assert "reprocess the user" in remedy


def test_dependency_violation_on_a_group_the_user_left_is_reported_once() -> None:
    b = (
        seed_tenant()
        .user("ann")
        .state("ann", E3, via=BASE, state="ActiveWithError", error="DependencyViolation")
    )

    found = findings_of(b)

    assert [f.code for f in found] == ["DependencyViolation"]
    assert found[0].group_id == b.id(BASE)


def test_a_removal_a_proxy_conflict_blocks_is_reported_as_the_conflict_not_as_stale() -> None:
    # Microsoft: removing a group's licenses can fail for a dependent license or "a proxy
    # address conflict issue which prohibits the license removal"; the user keeps the license
    b = (
        seed_tenant()
        .user("ann")
        .state("ann", E3, via=BASE, state="ActiveWithError", error="UniquenessViolation")
    )

    (finding,) = findings_of(b)

    assert (finding.code, finding.group_id) == ("UniquenessViolation", b.id(BASE))
    assert finding.remedy.startswith("Find the object that already uses the address")


def test_an_ordinary_error_on_a_group_the_user_left_is_only_stale() -> None:
    b = seed_tenant().user("ann").state("ann", E3, via=BASE, state="Error", error="Other")

    assert [f.code for f in findings_of(b)] == [codes.STALE_GROUP_ASSIGNMENT]


def test_reported_finding_carries_graphs_last_updated_time() -> None:
    b = ann_in_base().state(
        "ann", E3, via=BASE, state="Error", error="CountViolation", updated="2024-05-01T08:00:00Z"
    )

    assert only(b, "CountViolation").since == "2024-05-01T08:00:00Z"


def test_messages_use_the_friendly_product_name_when_given() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="CountViolation")

    found = evaluate(b.build(), {E3_SKU_ID: "Office 365 E3"}).findings()

    assert "Office 365 E3 (ENTERPRISEPACK)" in found[0].message


# --------------------------------------------------------------------------- derived: user


def test_membership_without_a_reported_state_is_pending() -> None:
    b = seed_tenant().group(BASE, {E3: BASE_DISABLED}, processing_state="ProcessingInProgress")
    b.member(BASE, "ann")

    finding = only(b, codes.PENDING_GROUP_ASSIGNMENT)

    assert (finding.severity, finding.sku_id, finding.group_id) == (
        WARNING,
        E3_SKU_ID,
        b.id(BASE),
    )
    assert "(group processing state: ProcessingInProgress)" in finding.message


def test_a_pending_assignment_of_a_group_still_processing_says_to_wait() -> None:
    b = seed_tenant().group(BASE, {E3: BASE_DISABLED}, processing_state="ProcessingInProgress")
    b.member(BASE, "ann")

    assert only(b, codes.PENDING_GROUP_ASSIGNMENT).remedy.startswith("Wait for Entra to process")


def test_a_pending_assignment_of_a_group_entra_has_processed_says_to_reprocess_not_wait() -> None:
    # Entra says it is done with the group and the license is still missing: waiting for the
    # group's processing is no advice; a reprocess is
    b = seed_tenant().group(BASE, {E3: BASE_DISABLED}, processing_state="ProcessingComplete")
    b.member(BASE, "ann")

    remedy = only(b, codes.PENDING_GROUP_ASSIGNMENT).remedy

    assert remedy.startswith("Entra has finished processing the group and shows no assignment")
    assert "reprocess the user" in remedy
    assert "Wait" not in remedy


def test_processed_membership_is_not_pending() -> None:
    b = ann_in_base().member(TEAMS, "ann").member(EMS_GROUP, "ann").processed()

    assert findings_of(b) == []


def test_direct_state_does_not_stand_in_for_a_pending_group_path() -> None:
    b = ann_in_base().direct("ann", E3, disabled=BASE_DISABLED)

    assert only(b, codes.PENDING_GROUP_ASSIGNMENT).group_id == b.id(BASE)


def test_state_from_a_group_the_user_left_is_stale() -> None:
    b = seed_tenant().member(BASE, "bob").user("ann").state("ann", E3, via=BASE)

    finding = only(b, codes.STALE_GROUP_ASSIGNMENT)

    assert finding.subject == b.id("ann")
    assert "no longer a direct member of 'Licensing_Office365_E3_Base'" in finding.message


def test_state_from_a_group_that_dropped_the_sku_is_stale() -> None:
    b = seed_tenant().group("Old", {EMS: []}).member("Old", "ann")
    b.processed().state("ann", E3, via="Old")

    finding = only(b, codes.STALE_GROUP_ASSIGNMENT)

    assert finding.sku_id == E3_SKU_ID
    assert "'Old' no longer assigns ENTERPRISEPACK" in finding.message


def test_state_from_an_unlicensed_group_is_stale() -> None:
    b = seed_tenant().group("Emptied").member("Emptied", "ann").state("ann", E3, via="Emptied")

    assert "'Emptied' no longer assigns" in only(b, codes.STALE_GROUP_ASSIGNMENT).message


def test_state_from_a_deleted_group_is_stale() -> None:
    b = seed_tenant().group("Gone", {E3: []}).member("Gone", "ann").processed()
    tenant = b.build()
    gone = b.id("Gone")
    tenant = dataclasses.replace(
        tenant, groups={k: g for k, g in tenant.groups.items() if k != gone}
    )

    finding = only(tenant, codes.STALE_GROUP_ASSIGNMENT)

    assert f"group {gone} no longer exists" in finding.message


def test_state_with_other_disabled_plans_than_the_group_is_a_plan_mismatch() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, disabled=["SWAY", "TEAMS1", "MCOSTANDARD"])

    finding = only(b, codes.PLAN_MISMATCH)

    assert finding.plans == ("Deskless", "MCOSTANDARD", "YAMMER_ENTERPRISE")
    assert "shows [MCOSTANDARD, SWAY, TEAMS1] disabled for Ann" in finding.message


def test_error_on_a_path_hides_its_plan_mismatch() -> None:
    b = ann_in_base().state(
        "ann", E3, via=BASE, state="Error", error="CountViolation", disabled=["SWAY"]
    )

    assert [f.code for f in findings_of(b)] == ["CountViolation"]


def test_licensed_user_without_usage_location_names_the_tenant_country() -> None:
    b = ann_in_base(location=None).processed()

    finding = only(b, codes.MISSING_USAGE_LOCATION)

    assert finding.severity == INFO
    assert "the tenant's country (DE)" in finding.message
    assert "Microsoft 365 admin center" in finding.remedy


def test_missing_usage_location_without_organization_does_not_invent_a_country() -> None:
    b = TenantBuilder().sku("E3", 2).group("G", ["E3"]).member("G", "ann")
    b.user("ann", location=None, synced=True).processed()

    finding = only(b, codes.MISSING_USAGE_LOCATION)

    assert "uses the tenant's country instead" in finding.message
    assert "on-premises Active Directory" in finding.remedy


def test_unlicensed_user_without_usage_location_is_fine() -> None:
    b = seed_tenant().user("ann", location=None)

    assert findings_of(b) == []


def test_disabled_account_holding_licenses_gets_one_finding_per_sku() -> None:
    b = ann_in_base(enabled=False).member(EMS_GROUP, "ann").processed()

    found = findings_of(b, codes.LICENSED_DISABLED_ACCOUNT)

    assert {f.sku_id for f in found} == {E3_SKU_ID, b.id(EMS)}
    assert all(f.severity == INFO for f in found)


def test_disabled_account_licensed_by_a_synced_group_is_sent_to_on_premises_ad() -> None:
    b = (
        seed_tenant()
        .group("Synced", {E3: []}, synced=True)
        .user("ann", enabled=False)
        .member("Synced", "ann")
        .processed()
    )

    remedy = only(b, codes.LICENSED_DISABLED_ACCOUNT).remedy

    assert "'Synced' is synced from on-premises" in remedy
    assert "on-premises Active Directory" in remedy


def test_disabled_account_without_licenses_is_fine() -> None:
    b = seed_tenant().user("ann", enabled=False)

    assert findings_of(b) == []


# --------------------------------------------------------------------------- direct + group


def test_direct_copy_covered_by_a_healthy_group_is_safely_redundant() -> None:
    b = ann_in_base().processed().direct("ann", E3, disabled=BASE_DISABLED)

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert finding.safe is True
    assert "safe to remove" in finding.message
    assert ADMIN_CENTER_LICENSES in finding.remedy


@pytest.mark.parametrize(
    ("state", "error"), [("Error", "CountViolation"), ("ActiveWithError", "Other")]
)
def test_redundant_direct_copy_is_not_safe_while_the_group_path_has_errors(
    state: str, error: str
) -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state=state, error=error)
    b.direct("ann", E3, disabled=BASE_DISABLED)

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert finding.safe is False
    assert (
        f"not safe yet: 'Licensing_Office365_E3_Base' is in error ({error}): fix that first"
        in finding.message
    )
    assert "Fix the group path's error first" in finding.remedy
    assert "wait" not in finding.remedy.lower()


def test_redundant_direct_copy_over_a_path_in_error_without_a_code_says_to_fix_it() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error=None)
    b.direct("ann", E3, disabled=BASE_DISABLED)

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert "'Licensing_Office365_E3_Base' is in error (Other): fix that first" in finding.message
    assert "wait" not in finding.remedy.lower()


def test_redundant_direct_copy_names_only_the_covering_path_that_is_not_active() -> None:
    b = ann_in_base().member(TEAMS, "ann").state("ann", E3, via=BASE)
    b.direct("ann", E3, disabled=["YAMMER_ENTERPRISE", "SWAY", "Deskless"])

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert finding.safe is False
    assert "'Licensing_Office365_E3_Teams'" in finding.message.split("not safe yet")[1]
    assert "'Licensing_Office365_E3_Base'" not in finding.message.split("not safe yet")[1]


def test_redundant_direct_copy_whose_group_path_entra_has_not_applied_yet_says_to_wait() -> None:
    b = ann_in_base().direct("ann", E3, disabled=BASE_DISABLED)

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert finding.safe is False
    assert (
        "not safe yet: Entra has not applied 'Licensing_Office365_E3_Base' to Ann yet: wait "
        "for the group's processing, then check again" in finding.message
    )
    assert "error" not in finding.message
    assert finding.remedy.startswith("Wait for Entra to process the group")
    assert "Fix" not in finding.remedy


def test_redundant_direct_copy_whose_group_path_still_disables_plans_says_to_wait() -> None:
    # the group now enables TEAMS1 (a plan change), Graph still shows it disabled on the path
    b = ann_in_base().state("ann", E3, via=BASE, disabled=[*BASE_DISABLED, "TEAMS1"])
    b.group(BASE, {E3: ["YAMMER_ENTERPRISE", "SWAY", "Deskless"]})
    b.direct("ann", E3, disabled=["YAMMER_ENTERPRISE", "SWAY", "Deskless"])

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert finding.safe is False
    assert (
        "'Licensing_Office365_E3_Base' still disables plans the group now enables: wait for "
        "the group's processing, then check again" in finding.message
    )
    assert finding.remedy.startswith("Wait for Entra to process the group")


def test_redundant_direct_copy_with_one_path_to_wait_for_and_one_in_error_says_both() -> None:
    b = ann_in_base().member(TEAMS, "ann")
    b.state("ann", E3, via=TEAMS, state="Error", error="MutuallyExclusiveViolation")
    b.direct("ann", E3, disabled=["YAMMER_ENTERPRISE", "SWAY", "Deskless"])

    finding = only(b, codes.REDUNDANT_DIRECT_ASSIGNMENT)

    assert "Entra has not applied 'Licensing_Office365_E3_Base' to Ann yet" in finding.message
    assert (
        "'Licensing_Office365_E3_Teams' is in error (MutuallyExclusiveViolation): fix that first"
        in finding.message
    )
    assert "Fix the group path's error first" in finding.remedy
    assert "wait for Entra to process the group" in finding.remedy


def test_direct_copy_with_plans_no_group_grants_names_those_plans() -> None:
    b = ann_in_base().processed().direct("ann", E3)

    finding = only(b, codes.DIRECT_ONLY_PLANS)

    assert finding.plans == ("Deskless", "SWAY", "TEAMS1", "YAMMER_ENTERPRISE")
    assert "lose 4 plan(s) only it grants: Deskless, SWAY, TEAMS1, YAMMER_ENTERPRISE" in (
        finding.message
    )
    assert findings_of(b, codes.REDUNDANT_DIRECT_ASSIGNMENT) == []


def test_direct_only_plans_say_where_the_group_enables_them_and_for_whom() -> None:
    b = ann_in_base().processed().direct("ann", E3)

    remedy = only(b, codes.DIRECT_ONLY_PLANS).remedy

    # a group's plans are changed on its product's license in the admin center, for every member
    assert "the ENTERPRISEPACK that 'Licensing_Office365_E3_Base' assigns" in remedy
    assert ADMIN_CENTER_LICENSES in remedy
    assert "every member of the group gets them" in remedy


def test_sku_held_only_directly_produces_no_finding() -> None:
    b = seed_tenant().direct("ann", E3, disabled=["SWAY"]).direct("ann", EMS)

    assert findings_of(b) == []


# --------------------------------------------------------------------------- groups


def sales_nested_in_base(other: str, *, nested_in: str) -> TenantBuilder:
    """Sales (Ann, Bob) nested in Base, where Bob is also a direct member, and `other` (Cy)
    nested in `nested_in`; Graph has processed every path."""
    return (
        seed_tenant()
        .member("Sales", "ann", "bob")
        .member(other, "cy")
        .member(BASE, "bob")
        .nested(BASE, "Sales")
        .nested(nested_in, other)
        .processed()
    )


def test_nested_group_member_lists_the_users_who_get_nothing() -> None:
    b = sales_nested_in_base("Sales EU", nested_in="Sales")

    finding = only(b, codes.NESTED_GROUP_MEMBER)

    assert finding.user_ids == tuple(sorted([b.id("ann"), b.id("cy")]))
    assert (finding.subject, finding.group_id) == (f"group:{b.id(BASE)}", b.id(BASE))
    assert finding.user_id is None
    assert "2 user(s) in 'Sales' get nothing" in finding.message
    assert finding.key == f"group:{b.id(BASE)}|-|NestedGroupMember|{b.id(BASE)}|{b.id('Sales')}"


def test_each_nested_group_of_a_licensed_group_is_its_own_finding() -> None:
    b = sales_nested_in_base("Ops", nested_in=BASE)

    found = sorted(findings_of(b, codes.NESTED_GROUP_MEMBER), key=lambda f: f.message)

    assert [(f.part, f.user_ids) for f in found] == [
        (b.id("Ops"), (b.id("cy"),)),
        (b.id("Sales"), (b.id("ann"),)),
    ]
    assert len({f.key for f in found}) == 2
    assert all(f.subject == f"group:{b.id(BASE)}" for f in found)


def test_nested_group_cycles_are_followed_once() -> None:
    b = seed_tenant().member("A", "ann").nested(BASE, "A").nested("A", BASE, "A")

    finding = only(b, codes.NESTED_GROUP_MEMBER)

    assert finding.user_ids == (b.id("ann"),)


def test_nested_group_in_an_unlicensed_group_is_not_a_finding() -> None:
    b = seed_tenant().member("Sales", "ann").nested("All staff", "Sales")

    assert findings_of(b) == []


def test_a_nested_group_that_leaves_nobody_out_is_not_a_finding() -> None:
    """Empty, or holding only the licensed group's own direct members: 0 users get nothing."""
    b = seed_tenant().member(BASE, "ann").member("Sales", "ann").nested(BASE, "Sales", "Empty")

    assert findings_of(b, codes.NESTED_GROUP_MEMBER) == []


def test_a_nested_group_licensed_with_the_same_products_is_not_a_finding() -> None:
    """Its users get the products from it; only those of a group nested further, unlicensed,
    are left out (no fewer plans: E3 with Base's plans off, or fewer off)."""
    b = seed_tenant().group("Sales", {E3: ["SWAY"]}).group("Ops", {E3: BASE_DISABLED})
    b.member("Sales", "ann").member("Ops", "bob").member("Sales EU", "cy")
    b.nested(BASE, "Sales", "Ops").nested("Sales", "Sales EU")

    found = findings_of(b, codes.NESTED_GROUP_MEMBER)

    assert sorted((f.group_id, f.part, f.user_ids) for f in found) == sorted(
        [
            (b.id(BASE), b.id("Sales"), (b.id("cy"),)),
            (b.id("Sales"), b.id("Sales EU"), (b.id("cy"),)),  # Sales' own, as licensed
        ]
    )


def test_a_nested_group_licensed_with_less_still_leaves_its_users_out() -> None:
    """Teams assigns E3 with every plan but TEAMS1 off: its users miss Base's other plans."""
    b = seed_tenant().member(TEAMS, "ann").nested(BASE, TEAMS)

    finding = only(b, codes.NESTED_GROUP_MEMBER)

    assert finding.user_ids == (b.id("ann"),)


def test_nested_group_of_a_synced_group_is_fixed_on_premises() -> None:
    b = seed_tenant().group("Synced", {E3: []}, synced=True).nested("Synced", "Sales")
    b.member("Sales", "ann")

    assert "on-premises Active Directory" in only(b, codes.NESTED_GROUP_MEMBER).remedy


def test_nested_group_of_a_dynamic_group_points_at_the_rule() -> None:
    b = seed_tenant().group("Dyn", {E3: []}, rule='user.department -eq "Sales"')
    b.nested("Dyn", "Sales").member("Sales", "ann")

    assert "membership rule" in only(b, codes.NESTED_GROUP_MEMBER).remedy


# --------------------------------------------------------------------------- SKUs


def test_more_users_than_enabled_seats_is_a_seat_shortfall() -> None:
    b = seed_tenant(e3_seats=2).member(BASE, "ann", "bob").member(TEAMS, "cy").processed()

    finding = only(b, codes.SEAT_SHORTFALL)
    report = next(s for s in evaluate(b.build()).skus if s.sku.id == E3_SKU_ID)

    assert (finding.subject, finding.severity) == (f"sku:{E3_SKU_ID}", WARNING)
    assert "3 users should hold ENTERPRISEPACK but only 2 seats" in finding.message
    assert "Buy 1 more seat(s)" in finding.remedy
    assert report.shortfall == 1


def test_one_seat_enabled_reads_in_the_singular() -> None:
    b = seed_tenant(e3_seats=1).member(BASE, "ann").member(TEAMS, "bob").processed()

    assert "2 users should hold ENTERPRISEPACK but only 1 seat is enabled" in (
        only(b, codes.SEAT_SHORTFALL).message
    )


def test_one_user_and_no_seat_reads_in_the_singular() -> None:
    b = seed_tenant(e3_seats=0).member(BASE, "ann").processed()

    assert "1 user should hold ENTERPRISEPACK but only 0 seats are enabled" in (
        only(b, codes.SEAT_SHORTFALL).message
    )


@pytest.mark.parametrize(
    "error",
    ["ProhibitedInUsageLocationViolation", "MutuallyExclusiveViolation", "DependencyViolation"],
)
def test_seat_demand_leaves_out_users_whose_path_fails_for_another_reason(error: str) -> None:
    """A seat would not fix a path that fails for another reason: buying one for that user
    leaves it unused. Users waiting for a seat (CountViolation) and pending members count."""
    b = (
        seed_tenant(e3_seats=3)
        .member(BASE, "ann", "bob", "cy", "dee", "eve")
        .state("ann", E3, via=BASE)
        .state("bob", E3, via=BASE)
        .state("cy", E3, via=BASE, state="Error", error="CountViolation")
        .state("dee", E3, via=BASE, state="Error", error=error)
    )

    report = next(s for s in evaluate(b.build()).skus if s.sku.id == E3_SKU_ID)
    finding = only(b, codes.SEAT_SHORTFALL)

    assert (report.demand, report.shortfall) == (4, 1)  # eve is pending: she will need one
    assert "4 users should hold ENTERPRISEPACK" in finding.message
    assert "Buy 1 more seat(s)" in finding.remedy


def test_a_working_path_keeps_the_demand_of_a_user_whose_other_path_fails() -> None:
    b = (
        seed_tenant(e3_seats=0)
        .member(BASE, "ann")
        .state("ann", E3, via=BASE, state="Error", error="MutuallyExclusiveViolation")
        .direct("ann", E3)
        .member(TEAMS, "bob")
        .state("bob", E3, via=TEAMS, state="ActiveWithError", error="DependencyViolation")
    )

    report = next(s for s in evaluate(b.build()).skus if s.sku.id == E3_SKU_ID)

    assert report.demand == 2


def test_exactly_enough_seats_is_no_shortfall() -> None:
    b = seed_tenant(e3_seats=2).member(BASE, "ann", "bob").processed()

    assert findings_of(b, codes.SEAT_SHORTFALL) == []


def test_warning_seats_do_not_count_against_the_shortfall() -> None:
    b = seed_tenant(e3_seats=0).member(BASE, "ann").processed()
    b.sku(E3, E3_PLANS, seats=0, warning=5, sku_id=E3_SKU_ID)

    assert only(b, codes.SEAT_SHORTFALL).sku_id == E3_SKU_ID


def test_a_shortfall_of_users_holding_lapsed_seats_does_not_promise_them_count_violations() -> None:
    # the subscription is in its grace period: its 5 seats moved to warning, and the 2 users
    # who hold them keep their license (consumedUnits 2); no CountViolation is coming for them
    b = seed_tenant().member(BASE, "ann", "bob").processed()
    b.sku(E3, E3_PLANS, seats=0, warning=5, consumed=2, sku_id=E3_SKU_ID)

    message = only(b, codes.SEAT_SHORTFALL).message

    assert "will be left with CountViolation errors" not in message
    assert "up to 2 of them hold lapsed seats now" in message
    assert "not a CountViolation" in message


def test_a_shortfall_beyond_the_lapsed_seats_held_still_names_the_count_violations() -> None:
    b = seed_tenant().member(BASE, "ann", "bob", "cy").processed()
    b.sku(E3, E3_PLANS, seats=0, warning=5, consumed=1, sku_id=E3_SKU_ID)

    message = only(b, codes.SEAT_SHORTFALL).message

    assert "3 user(s) are left without an enabled seat: up to 1 of them hold" in message
    assert "the others will get CountViolation errors" in message


@pytest.mark.parametrize(
    ("warning", "suspended", "locked_out", "remedy"),
    [
        (5, 0, 0, "Renew the expired subscription of ENTERPRISEPACK: 2 of its 5 seat(s) in "),
        (0, 5, 0, "Reactivate the cancelled subscription of ENTERPRISEPACK: 2 of its 5 "),
        (1, 0, 0, "Renew the expired subscription of ENTERPRISEPACK: 1 of its 1 seat(s) in "),
        (0, 0, 5, "Buy 2 more seat(s) of ENTERPRISEPACK"),
    ],
)
def test_a_shortfall_that_lapsed_seats_would_cover_says_renew_or_reactivate_not_buy(
    warning: int, suspended: int, locked_out: int, remedy: str
) -> None:
    """prepaidUnits.warning are seats of a subscription past its end date, in the grace period
    to renew it; suspended ones were cancelled and can be reactivated before they are deleted;
    locked-out ones cannot be assigned (licenseUnitsDetail). Buying seats for a shortfall that
    renewing covers pays twice."""
    b = seed_tenant().member(BASE, "ann", "bob").processed()
    b.sku(
        E3, E3_PLANS, seats=0, warning=warning, suspended=suspended, locked_out=locked_out,
        sku_id=E3_SKU_ID,
    )  # fmt: skip

    finding = only(b, codes.SEAT_SHORTFALL)

    assert finding.remedy.startswith(remedy)
    assert ("Buy" in finding.remedy) == (warning + suspended < 2)
    assert f"{warning} in warning" in finding.message


@pytest.mark.parametrize(("warning", "suspended", "locked_out"), [(3, 0, 0), (0, 3, 0), (0, 0, 3)])
def test_lapsing_units_of_a_sku_in_use_put_the_subscription_at_risk(
    warning: int, suspended: int, locked_out: int
) -> None:
    b = seed_tenant().member(BASE, "ann").processed()
    b.sku(
        E3, E3_PLANS, warning=warning, suspended=suspended, locked_out=locked_out, sku_id=E3_SKU_ID
    )

    finding = only(b, codes.SUBSCRIPTION_AT_RISK)

    assert finding.severity == WARNING
    assert "while in use by 1 user:" in finding.message


def test_lapsing_units_count_consumed_seats_even_without_known_demand() -> None:
    b = TenantBuilder().sku("E3", 2, seats=10, consumed=4, suspended=10)

    assert "while in use by 4 users:" in only(b, codes.SUBSCRIPTION_AT_RISK).message


@pytest.mark.parametrize("status", ["Warning", "Suspended", "LockedOut", "Deleted"])
def test_a_lapsing_subscription_status_puts_a_sku_in_use_at_risk_without_lapsing_units(
    status: str,
) -> None:
    # subscribedSku.capabilityStatus says where the subscription stands even when its units
    # no longer show it (a deleted subscription keeps none, while users still hold seats)
    b = TenantBuilder().sku("E3", 2, seats=0, consumed=4, capability_status=status)

    finding = only(b, codes.SUBSCRIPTION_AT_RISK)

    assert f"subscription status {status}) is in use by 4 users:" in finding.message
    # no "seats in warning (0), suspended (0) or locked-out (0)": it has none of them
    assert "(0)" not in finding.message


def test_lapsing_units_of_an_unused_sku_are_not_a_risk() -> None:
    b = TenantBuilder().sku("E3", 2, seats=0, warning=10)

    assert findings_of(b) == []


# --------------------------------------------------------------------------- keys


def busy_tenant() -> TenantBuilder:
    return (
        seed_tenant(e3_seats=1)
        .member(BASE, "ann", "bob")
        .member(TEAMS, "ann")
        .member(EMS_GROUP, "cy")
        .state("ann", E3, via=BASE, state="Error", error="CountViolation")
        .state("ann", E3, via=TEAMS, disabled=["SWAY"])
        .state("bob", E3, via=TEAMS)
        .direct("bob", E3, state="Error", error="CountViolation")
        .user("cy", location=None, enabled=False)
        .state("cy", EMS, via=EMS_GROUP)
        .nested(BASE, "Sales")
        .member("Sales", "dee")
    )


def test_finding_keys_name_subject_sku_code_and_group() -> None:
    b = ann_in_base().state("ann", E3, via=BASE, state="Error", error="CountViolation")

    key = only(b, "CountViolation").key

    assert key == f"{b.id('ann')}|{E3_SKU_ID}|CountViolation|{b.id(BASE)}"


def test_finding_keys_are_unique_and_stable_across_evaluations() -> None:
    first = [f.key for f in findings_of(busy_tenant())]
    second = [f.key for f in findings_of(busy_tenant())]

    assert len(first) == len(set(first)) >= 8
    assert first == second


def test_same_error_from_two_paths_gives_two_keys() -> None:
    b = (
        ann_in_base()
        .member(TEAMS, "ann")
        .state("ann", E3, via=BASE, state="Error", error="CountViolation")
        .state("ann", E3, via=TEAMS, state="Error", error="CountViolation")
        .direct("ann", E3, state="Error", error="CountViolation")
    )

    keys = {f.key for f in findings_of(b, "CountViolation")}

    assert len(keys) == 3


def test_user_findings_come_first_then_groups_then_skus() -> None:
    found = findings_of(busy_tenant())

    kinds = [f.subject.split(":")[0] if ":" in f.subject else "user" for f in found]

    assert kinds == sorted(kinds, key=["user", "group", "sku"].index)
    assert set(kinds) == {"user", "group", "sku"}


def test_every_finding_says_what_to_do() -> None:
    found = findings_of(busy_tenant())

    assert all(f.message and f.remedy for f in found)
    assert all(f.severity in {ERROR, WARNING, INFO} for f in found)
    assert {f.code for f in found} >= {
        "CountViolation",
        codes.PLAN_MISMATCH,
        codes.MISSING_USAGE_LOCATION,
        codes.LICENSED_DISABLED_ACCOUNT,
        codes.NESTED_GROUP_MEMBER,
        codes.SEAT_SHORTFALL,
    }
