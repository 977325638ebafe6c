"""Work shared by the users of one group combination gives each user their own answer.

`evaluate` looks a user with only pending findings (`only_pending`) up by their combination of
licensed groups, `effective_licenses_for_user` by the combination's identity when the user has
no direct assignment, `Memberships.of` builds a combination from its groups' parts, and a
combination whose groups give different SKUs is their licenses side by side. Each user's
report must still be what evaluating that user alone gives: their own id, name, usage
location, account state, direct assignments and states.
"""

from __future__ import annotations

from shared.adapters.snapshot import load_snapshot
from shared.core import findings as codes
from shared.core.effective import (
    PathCache,
    effective_licenses_for_user,
    licensed_groups_by_user,
)
from shared.core.evaluate import UserReport, evaluate
from shared.core.findings import Names
from shared.core.model import Tenant, User
from shared.core.user_findings import Memberships, only_pending, user_findings
from tests.builders import BASE, E3, EMS, EMS_GROUP, TEAMS, TenantBuilder, seed_tenant
from tests.demo_tenant import DEMO

NAMES = ("ann", "bob", "cy", "dee", "eve", "fay")


def _same_groups() -> TenantBuilder:
    """Six users in the same licensed groups, nothing reported for Ann and Bob; the others
    differ in one thing each: no usage location, a disabled account, a direct assignment, a
    state in error. Dee and Gus in the EMS group only."""
    b = seed_tenant()
    for name in NAMES:
        b.user(name, display_name=f'{name.title()} O\'Neil "{name}"')
    b.user("cy", location=None, display_name="Cy")
    b.user("dee", enabled=False, display_name="Dee")
    b.member(BASE, *NAMES).member(TEAMS, *NAMES).member(EMS_GROUP, "gus")
    b.assigned("dee", E3)
    b.direct("eve", EMS)
    b.state("fay", E3, via=BASE, state="Error", error="CountViolation")
    return b


def _alone(tenant: Tenant, user: User) -> UserReport:
    """The user evaluated with caches of their own: nothing shared with another user."""
    member_of = licensed_groups_by_user(tenant.groups.values()).get(user.id, ())
    licenses = effective_licenses_for_user(
        user, list(member_of), tenant.skus, PathCache(tenant.skus)
    )
    names = Names(tenant, None, None)
    pending, listed = user_findings(
        user, licenses, list(member_of), tenant, names, Memberships(tenant, names)
    )
    return UserReport(user, licenses, tuple(listed), pending)


def _assert_each_user_as_alone(tenant: Tenant) -> None:
    evaluation = evaluate(tenant)
    assert [r.user for r in evaluation.users] == list(tenant.users.values())
    for report in evaluation.users:
        alone = _alone(tenant, report.user)
        assert report.licenses == alone.licenses, report.user.id
        assert report.findings == alone.findings, report.user.id


def test_users_of_one_combination_get_their_own_findings() -> None:
    b = _same_groups()
    tenant = b.build()
    by_name = {name: r for r in evaluate(tenant).users for name in NAMES if r.user.id == b.id(name)}

    _assert_each_user_as_alone(tenant)
    for name, report in by_name.items():
        assert report.user.id == b.id(name)
        assert {f.subject for f in report.findings} == {b.id(name)}
        pending = [f for f in report.findings if f.code == codes.PENDING_GROUP_ASSIGNMENT]
        assert pending
        assert all(f.message.startswith(report.user.display_name) for f in pending)
    assert by_name["ann"].pending is by_name["bob"].pending  # shared, not copied
    assert by_name["ann"].listed == by_name["bob"].listed == ()
    assert [f.code for f in by_name["cy"].listed] == [codes.MISSING_USAGE_LOCATION]
    assert codes.LICENSED_DISABLED_ACCOUNT in [f.code for f in by_name["dee"].listed]
    assert [lic.direct_path is not None for lic in by_name["eve"].licenses].count(True) == 1
    assert by_name["fay"].pending == ()
    assert by_name["fay"].findings[0].code == "CountViolation"


def test_only_pending_users_have_nothing_but_their_combinations_pending() -> None:
    b = _same_groups()
    tenant = b.build()
    flags = {name: only_pending(tenant.users[b.id(name)]) for name in NAMES}

    assert flags == {
        "ann": True,
        "bob": True,
        "cy": False,
        "dee": False,
        "eve": False,
        "fay": False,
    }


def test_the_demo_tenant_evaluates_each_user_as_alone() -> None:
    _assert_each_user_as_alone(load_snapshot(DEMO).tenant)


def test_groups_giving_the_same_sku_share_one_license_of_both_paths() -> None:
    b = seed_tenant().group("Extra", [E3]).user("ann").member(BASE, "ann").member("Extra", "ann")
    tenant = b.build()
    groups = licensed_groups_by_user(tenant.groups.values())[b.id("ann")]

    (lic,) = effective_licenses_for_user(tenant.users[b.id("ann")], groups, tenant.skus)

    assert lic.sku_id == b.id(E3)
    assert [p.group_id for p in lic.paths] == [b.id(BASE), b.id("Extra")]


def test_a_group_listed_twice_is_pending_once() -> None:
    b = seed_tenant().user("ann").member(BASE, "ann")
    tenant = b.build()
    group = tenant.groups[b.id(BASE)]
    memberships = Memberships(tenant, Names(tenant, None, None))

    desired, pending = memberships.of((group, group))

    assert pending == memberships.of((group,))[1]
    assert list(desired) == [(lic.sku_id, group.id) for lic in group.licenses]
