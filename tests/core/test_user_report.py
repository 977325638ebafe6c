"""A user's pending assignments stay the group combination's shared tuple until asked for.

`UserReport.findings` builds them (first, then the rest); `Evaluation.finding_counts` counts
them without building them. Both must say what building every finding up front said.
"""

from __future__ import annotations

from shared.core import findings as codes
from shared.core.evaluate import evaluate
from shared.core.findings import WARNING, FindingCounts, finding_counts, service_finding
from tests.builders import BASE, E3, EMS_GROUP, TEAMS, TenantBuilder, seed_tenant


def _pending_tenant() -> TenantBuilder:
    """Ann and Bob in the same groups with nothing reported; Cy's Base path in error."""
    return (
        seed_tenant()
        .user("ann", location=None)
        .member(BASE, "ann", "bob", "cy")
        .member(TEAMS, "ann", "bob", "cy")
        .member(EMS_GROUP, "dee")
        .state("cy", E3, via=BASE, state="Error", error="CountViolation")
        .nested(BASE, "Sales")
    )


def test_users_of_one_combination_share_its_pending_tuple() -> None:
    b = _pending_tenant()
    evaluation = evaluate(b.build())
    by_id = {r.user.id: r for r in evaluation.users}
    ann, bob = by_id[b.id("ann")], by_id[b.id("bob")]

    assert ann.pending is bob.pending
    assert [(p.sku_id, p.group_id) for p in ann.pending] == [
        (f.sku_id, f.group_id) for f in bob.findings
    ]
    assert bob.listed == ()


def test_findings_builds_the_pending_findings_first_then_the_rest() -> None:
    b = _pending_tenant()
    ann = next(r for r in evaluate(b.build()).users if r.user.id == b.id("ann"))

    found = ann.findings

    assert [f.code for f in found] == [
        codes.PENDING_GROUP_ASSIGNMENT,
        codes.PENDING_GROUP_ASSIGNMENT,
        codes.MISSING_USAGE_LOCATION,
    ]
    pending = found[0]
    assert (pending.severity, pending.subject, pending.group_id) == (
        WARNING,
        b.id("ann"),
        b.id(BASE),
    )
    assert pending.message.startswith(f"{ann.user.display_name} is a member of ")
    assert ann.findings is found  # built once


def test_a_user_with_a_state_finding_has_its_pending_findings_after_it() -> None:
    b = _pending_tenant()
    cy = next(r for r in evaluate(b.build()).users if r.user.id == b.id("cy"))

    assert cy.pending == ()
    assert [f.code for f in cy.findings] == ["CountViolation", codes.PENDING_GROUP_ASSIGNMENT]
    assert cy.findings[1].group_id == b.id(TEAMS)


def test_finding_counts_count_what_building_every_finding_counts_in_its_order() -> None:
    evaluation = evaluate(_pending_tenant().build())

    counts = evaluation.finding_counts()

    built = finding_counts(evaluation.findings())
    assert counts == built
    # codes first shown first: summaries keep that order between equal counts
    assert _codes_in_order(counts) == _codes_in_order(built)
    assert counts[(WARNING, codes.PENDING_GROUP_ASSIGNMENT, _pending_tenant().id(BASE))] == 2


def _codes_in_order(counts: FindingCounts) -> list[tuple[str, str]]:
    return list(dict.fromkeys((severity, code) for severity, code, _ in counts))


def test_with_finding_adds_one_finding_last() -> None:
    b = _pending_tenant()
    ann = next(r for r in evaluate(b.build()).users if r.user.id == b.id("ann"))
    extra = service_finding("X", "test", message="m", remedy="r")

    more = ann.with_finding(extra)

    assert more.findings == (*ann.findings, extra)
    assert more.pending is ann.pending
