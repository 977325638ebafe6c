"""Invariants of the core over random small tenants (hypothesis)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.effective import effective_licenses
from shared.core.evaluate import evaluate
from shared.core.model import AssignmentState, Tenant
from tests.builders import TenantBuilder

PLANS = [f"P{i}" for i in range(6)]
STATES = [
    ("Active", None),
    ("Active", "None"),
    ("Error", "CountViolation"),
    ("Error", "MutuallyExclusiveViolation"),
    ("ActiveWithError", "DependencyViolation"),
    ("Error", "ProhibitedInUsageLocationViolation"),
    ("Error", "UniquenessViolation"),
    ("Error", "Others"),
]

T = TypeVar("T")

fast = settings(max_examples=120, deadline=None)


def subset(draw: st.DrawFn, items: list[str], max_size: int | None = None) -> list[str]:
    return draw(st.lists(st.sampled_from(items), unique=True, max_size=max_size)) if items else []


@st.composite
def tenants(draw: st.DrawFn) -> TenantBuilder:
    b = TenantBuilder()
    if draw(st.booleans()):
        b.organization(country=draw(st.sampled_from([None, "DE", "US"])))
    sku_plans = {
        f"S{i}": draw(st.lists(st.sampled_from(PLANS), min_size=1, unique=True))
        for i in range(draw(st.integers(1, 3)))
    }
    for sku, plans in sku_plans.items():
        stages = draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))
        seats, warning, suspended, locked_out = stages
        b.sku(sku, plans, seats=seats, warning=warning, suspended=suspended, locked_out=locked_out)
    users = [f"u{i}" for i in range(draw(st.integers(1, 5)))]
    groups = [f"G{i}" for i in range(draw(st.integers(0, 4)))]
    for user in users:
        b.user(
            user,
            location=draw(st.sampled_from([None, "DE"])),
            enabled=draw(st.booleans()),
            synced=draw(st.booleans()),
        )
    for group in groups:
        licenses = {sku: subset(draw, sku_plans[sku]) for sku in subset(draw, list(sku_plans))}
        b.group(group, licenses, synced=draw(st.booleans()))
        b.member(group, *subset(draw, users))
        b.nested(group, *subset(draw, groups, max_size=2))  # may nest itself: a cycle
    for user in users:
        for sku in subset(draw, list(sku_plans)):
            state, error = draw(st.sampled_from(STATES))
            b.direct(user, sku, subset(draw, sku_plans[sku]), state=state, error=error)
        for group in subset(draw, groups):  # paths Graph reports: current, stale or none
            for sku in subset(draw, list(sku_plans), max_size=2):
                state, error = draw(st.sampled_from(STATES))
                disabled = draw(st.none() | st.just(subset(draw, sku_plans[sku])))
                b.state(user, sku, via=group, state=state, error=error, disabled=disabled)
    return b


def shuffled(tenant: Tenant, rnd: random.Random) -> Tenant:
    """The same tenant with every collection in another order."""

    def mix(items: list[T]) -> list[T]:
        rnd.shuffle(items)
        return items

    groups = [
        dataclasses.replace(
            g,
            licenses=tuple(mix(list(g.licenses))),
            member_user_ids=tuple(mix(list(g.member_user_ids))),
            member_group_ids=tuple(mix(list(g.member_group_ids))),
        )
        for g in tenant.groups.values()
    ]
    users = [
        dataclasses.replace(
            u,
            states=tuple(mix(list(u.states))),
            assigned_licenses=tuple(mix(list(u.assigned_licenses))),
        )
        for u in tenant.users.values()
    ]
    return Tenant(
        skus={s.id: s for s in mix(list(tenant.skus.values()))},
        groups={g.id: g for g in mix(groups)},
        users={u.id: u for u in mix(users)},
        organization=tenant.organization,
    )


def license_view(tenant: Tenant) -> dict[str, dict[str, tuple[object, ...]]]:
    """Effective licenses with path order ignored."""
    return {
        user_id: {
            lic.sku_id: (
                lic.enabled_plans,
                lic.disabled_plans,
                Counter((p.kind, p.group_id, p.enabled_plans) for p in lic.paths),
            )
            for lic in licenses
        }
        for user_id, licenses in effective_licenses(tenant).items()
    }


def finding_view(tenant: Tenant) -> Counter[tuple[object, ...]]:
    return Counter(
        (f.key, f.severity, f.safe, f.user_ids, f.plans, f.evidence)
        for f in evaluate(tenant).findings()
    )


@fast
@given(tenants())
def test_enabled_and_disabled_plans_partition_the_skus_plans(b: TenantBuilder) -> None:
    tenant = b.build()

    for licenses in effective_licenses(tenant).values():
        for lic in licenses:
            assert lic.enabled_plans | lic.disabled_plans == tenant.skus[lic.sku_id].plan_ids
            assert not lic.enabled_plans & lic.disabled_plans


@fast
@given(tenants(), st.data())
def test_adding_a_path_never_removes_an_enabled_plan(b: TenantBuilder, data: st.DataObject) -> None:
    tenant = b.build()
    user = data.draw(st.sampled_from(sorted(tenant.users)))
    if data.draw(st.booleans()) and tenant.groups:
        group = tenant.groups[data.draw(st.sampled_from(sorted(tenant.groups)))]
        joined = dataclasses.replace(group, member_user_ids=(*group.member_user_ids, user))
        grown = dataclasses.replace(tenant, groups={**tenant.groups, group.id: joined})
    else:
        sku = tenant.skus[data.draw(st.sampled_from(sorted(tenant.skus)))]
        disabled = data.draw(st.frozensets(st.sampled_from(sorted(sku.plan_ids))))
        direct = AssignmentState(sku.id, None, disabled)
        u = tenant.users[user]
        grown_user = dataclasses.replace(u, states=(*u.states, direct))
        grown = dataclasses.replace(tenant, users={**tenant.users, user: grown_user})

    before = {lic.sku_id: lic for lic in effective_licenses(tenant)[user]}
    after = {lic.sku_id: lic for lic in effective_licenses(grown)[user]}

    assert before.keys() <= after.keys()
    for sku_id, lic in before.items():
        assert lic.enabled_plans <= after[sku_id].enabled_plans


@fast
@given(tenants())
def test_one_seat_per_sku_per_user_and_demand_counts_holders(b: TenantBuilder) -> None:
    """Demand counts the users who would take a seat: a SKU whose every path Graph shows in
    Error for a reason other than seats (CountViolation) would take none."""
    evaluation = evaluate(b.build())

    holders: Counter[str] = Counter()
    for report in evaluation.users:
        sku_ids = [lic.sku_id for lic in report.licenses]
        assert len(sku_ids) == len(set(sku_ids))
        failed = {
            (s.sku_id, s.assigned_by_group)
            for s in report.user.states
            if s.state == "Error" and s.error not in (None, "CountViolation")
        }
        holders.update(
            lic.sku_id
            for lic in report.licenses
            if not all((lic.sku_id, p.group_id) in failed for p in lic.paths)
        )
    assert {s.sku.id: s.demand for s in evaluation.skus} == {
        sku_id: holders[sku_id] for sku_id in b.build().skus
    }


@fast
@given(tenants(), st.randoms(use_true_random=False))
def test_evaluation_does_not_depend_on_input_order(b: TenantBuilder, rnd: random.Random) -> None:
    tenant = b.build()
    other = shuffled(tenant, rnd)

    assert license_view(other) == license_view(tenant)
    assert finding_view(other) == finding_view(tenant)


@fast
@given(tenants())
def test_finding_keys_are_unique(b: TenantBuilder) -> None:
    keys = [f.key for f in evaluate(b.build()).findings()]

    assert len(keys) == len(set(keys))


@fast
@given(tenants())
def test_user_findings_are_about_that_user(b: TenantBuilder) -> None:
    evaluation = evaluate(b.build())

    for report in evaluation.users:
        assert all(f.user_id == report.user.id for f in report.findings)
