"""The reprocess policy: reprocess only when the cause may be gone, never twice for one cause."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import findings as codes
from shared.core.evaluate import evaluate
from shared.core.findings import INFO, WARNING, Finding
from shared.core.model import (
    AssignmentState,
    Group,
    LicenseAssignment,
    PrepaidUnits,
    ServicePlan,
    Sku,
    Tenant,
    User,
)
from shared.core.reprocess import NO_FREE_SEATS, PROCESSING_COMPLETE, SEATS_FREE, decide_reprocess
from shared.core.reprocess_plan import (
    AlertInstead,
    Attempt,
    Cause,
    GroupAlert,
    ReprocessNow,
    ReprocessPlan,
    RetryLater,
    TenantFacts,
)
from tests import builders

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
E3 = "sku-e3"
E5 = "sku-e5"
G1 = "group-1"
G2 = "group-2"


finding = functools.partial(builders.finding, sku=E3, group=G1)
"""A finding of u1's (unless a subject is given) for E3 from G1 (unless told otherwise)."""


def facts(
    free: Mapping[str, int] | None = None,
    processing: Mapping[str, str | None] | None = None,
    now: datetime = NOW,
    **kwargs: object,
) -> TenantFacts:
    return TenantFacts(
        now=now,
        free_seats=dict(free or {}),
        group_processing=dict(processing or {G1: PROCESSING_COMPLETE, G2: PROCESSING_COMPLETE}),
        **kwargs,  # type: ignore[arg-type]
    )


def decide(
    findings: Sequence[Finding],
    history: Mapping[str, Sequence[Attempt]] | None = None,
    tenant_facts: TenantFacts | None = None,
) -> ReprocessPlan:
    return decide_reprocess(findings, history or {}, tenant_facts or facts())


def attempted(at: datetime, code: str, *evidence: str, sku: str = E3, group: str = G1) -> Attempt:
    return Attempt(at, Cause(code, sku, group, evidence))


def observed(at: datetime, code: str, *evidence: str, sku: str = E3, group: str = G1) -> Attempt:
    return Attempt.observation(at, Cause(code, sku, group, evidence))


LOCATION_DE = ("usageLocation=DE",)


def location_entry(days_ago: int, country: str, entry: Callable[..., Attempt]) -> Attempt:
    """A ledger entry (`attempted` or `observed`) for a usage location, `days_ago` days back."""
    at = NOW - timedelta(days=days_ago)
    return entry(at, codes.PROHIBITED_IN_USAGE_LOCATION, f"usageLocation={country}")


def location_finding(country: str) -> Finding:
    """The user's ProhibitedInUsageLocationViolation while the usage location is `country`."""
    return finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=(f"usageLocation={country}",))


# --------------------------------------------------------------------------- seats


def test_count_violation_is_reprocessed_only_for_as_many_users_as_free_seats_oldest_first() -> None:
    findings = [
        finding(codes.COUNT_VIOLATION, "u-new", since="2026-03-02T10:00:00Z"),
        finding(codes.COUNT_VIOLATION, "u-unknown", since=None),
        finding(codes.COUNT_VIOLATION, "u-oldest", since="2026-02-01T08:00:00Z"),
        finding(codes.COUNT_VIOLATION, "u-middle", since="2026-02-15T08:00:00Z"),
    ]

    plan = decide(findings, tenant_facts=facts(free={E3: 2}))

    assert plan.to_reprocess == ["u-oldest", "u-middle"]
    waiting = {d.user_id: d for d in plan.retry_later}
    assert set(waiting) == {"u-new", "u-unknown"}
    assert all(d.not_before == NOW + timedelta(minutes=15) for d in waiting.values())
    assert "waiting for a free seat" in waiting["u-new"].reason


def test_equally_old_count_violations_are_ranked_by_user_id() -> None:
    findings = [finding(codes.COUNT_VIOLATION, u, since="2026-02-01T08:00:00Z") for u in "cab"]

    plan = decide(findings, tenant_facts=facts(free={E3: 1}))

    assert plan.to_reprocess == ["a"]


def test_count_violation_with_no_free_seats_alerts_to_buy_seats_and_records_the_shortage() -> None:
    plan = decide([finding(codes.COUNT_VIOLATION)], tenant_facts=facts(free={E3: 0}))

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert "buy or free seats" in decision.reason
    assert decision.observe == (Cause(codes.COUNT_VIOLATION, E3, G1, (NO_FREE_SEATS,)),)
    assert plan.observations() == {"u1": (Attempt.observation(NOW, decision.observe[0]),)}


def test_a_sku_missing_from_the_free_seat_facts_counts_as_having_no_free_seats() -> None:
    plan = decide([finding(codes.COUNT_VIOLATION)], tenant_facts=facts(free={}))

    assert plan.to_reprocess == []
    assert isinstance(plan.users["u1"], AlertInstead)


def test_count_violation_first_seen_with_free_seats_is_reprocessed_with_no_shortage_marker() -> (
    None
):
    plan = decide([finding(codes.COUNT_VIOLATION)], tenant_facts=facts(free={E3: 3}))

    decision = plan.users["u1"]
    assert isinstance(decision, ReprocessNow)
    assert decision.causes == (Cause(codes.COUNT_VIOLATION, E3, G1, (SEATS_FREE, "after=none")),)
    assert decision.attempts(NOW) == (Attempt(NOW, decision.causes[0]),)
    assert plan.observations() == {}


def test_seats_freed_after_an_observed_shortage_trigger_another_reprocess() -> None:
    first_shortage = NOW - timedelta(days=4)
    first = NOW - timedelta(days=3)
    shortage = NOW - timedelta(days=2)
    history = {
        "u1": [
            observed(first_shortage, codes.COUNT_VIOLATION, NO_FREE_SEATS),
            attempted(
                first, codes.COUNT_VIOLATION, SEATS_FREE, f"after={first_shortage.isoformat()}"
            ),
            observed(shortage, codes.COUNT_VIOLATION, NO_FREE_SEATS),
        ]
    }

    plan = decide([finding(codes.COUNT_VIOLATION)], history, facts(free={E3: 1}))

    decision = plan.users["u1"]
    assert isinstance(decision, ReprocessNow)
    assert decision.causes[0].evidence == (SEATS_FREE, f"after={shortage.isoformat()}")


# --------------------------------------------------------------------------- never twice


def test_unchanged_cause_is_never_reprocessed_twice() -> None:
    at = datetime(2026, 2, 20, 9, 30, tzinfo=UTC)
    history = {"u1": [attempted(at, codes.COUNT_VIOLATION, SEATS_FREE, "after=none")]}

    plan = decide([finding(codes.COUNT_VIOLATION)], history, facts(free={E3: 5}))

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert "already reprocessed for this cause" in decision.reason
    assert "2026-02-20T09:30" in decision.reason
    assert "needs a fix" in decision.reason
    assert decision.observe == ()  # the ledger's latest entry already holds this cause


def test_unchanged_usage_location_is_not_reprocessed_again_after_an_attempt() -> None:
    history = {"u1": [location_entry(3, "DE", observed), location_entry(2, "FR", attempted)]}

    plan = decide([location_finding("FR")], history)

    assert plan.to_reprocess == []
    assert "already reprocessed" in plan.users["u1"].reason
    assert "correct the usage location" in plan.users["u1"].reason


def test_a_location_reprocessed_before_is_not_retried_even_after_another_location() -> None:
    history = {"u1": [location_entry(5, "FR", attempted), location_entry(3, "CH", attempted)]}

    plan = decide([location_finding("FR")], history)

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert "already reprocessed" in decision.reason
    assert decision.observe == (back_to_fr_cause := decision.causes[0],)
    assert back_to_fr_cause.evidence == ("usageLocation=FR",)


# --------------------------------------------------------------------------- evidence changes


def test_usage_location_on_first_sight_alerts_and_asks_to_record_an_observation() -> None:
    plan = decide([finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=LOCATION_DE)])

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert "correct the usage location or remove the user from group" in decision.reason
    assert "first seen" in decision.reason
    cause = Cause(codes.PROHIBITED_IN_USAGE_LOCATION, E3, G1, LOCATION_DE)
    assert plan.observations() == {"u1": (Attempt(NOW, cause, reprocessed=False),)}


def test_usage_location_fix_triggers_a_reprocess() -> None:
    history = {
        "u1": [observed(NOW - timedelta(hours=6), codes.PROHIBITED_IN_USAGE_LOCATION, *LOCATION_DE)]
    }
    fixed = finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=("usageLocation=US",))

    plan = decide([fixed], history)

    decision = plan.users["u1"]
    assert isinstance(decision, ReprocessNow)
    assert decision.causes == (
        Cause(codes.PROHIBITED_IN_USAGE_LOCATION, E3, G1, ("usageLocation=US",)),
    )
    assert "usageLocation=DE -> usageLocation=US" in decision.reason


def test_unchanged_usage_location_keeps_alerting_without_a_new_record() -> None:
    seen = NOW - timedelta(hours=6)
    history = {"u1": [observed(seen, codes.PROHIBITED_IN_USAGE_LOCATION, *LOCATION_DE)]}

    plan = decide([finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=LOCATION_DE)], history)

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert f"unchanged since {seen.isoformat(timespec='minutes')}" in decision.reason
    assert plan.observations() == {}


def test_mutually_exclusive_alerts_first_and_reprocesses_once_the_conflicting_path_is_gone() -> (
    None
):
    before = ("sku-e1:direct", f"{E5}:{G2}")
    first = decide([finding(codes.MUTUALLY_EXCLUSIVE, evidence=before)])

    alert = first.users["u1"]
    assert isinstance(alert, AlertInstead)
    assert "decide which license wins" in alert.reason
    assert "planned swap" in alert.reason

    history = {"u1": first.observations()["u1"]}
    later = facts(now=NOW + timedelta(hours=1))
    unchanged = decide([finding(codes.MUTUALLY_EXCLUSIVE, evidence=before)], history, later)
    assert unchanged.to_reprocess == []

    after_leaving = (f"{E5}:{G2}",)
    changed = decide([finding(codes.MUTUALLY_EXCLUSIVE, evidence=after_leaving)], history, later)
    assert changed.to_reprocess == ["u1"]


# --------------------------------------------------------------------------- never by reprocess


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (codes.UNIQUENESS_VIOLATION, "fix the duplicate proxy address first"),
        (codes.DEPENDENCY_VIOLATION, "disable the dependent plans"),
        (codes.OTHER, "audit log"),
        ("SomethingNewFromGraph", "unknown error SomethingNewFromGraph"),
    ],
)
def test_uniqueness_dependency_and_other_errors_alert_instead_of_reprocessing(
    code: str, fix: str
) -> None:
    plan = decide([finding(code)], tenant_facts=facts(free={E3: 10}))

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert fix in decision.reason
    assert decision.observe == ()
    assert plan.to_reprocess == []


def test_errors_on_direct_assignments_alert_because_reprocess_reruns_group_assignments_only() -> (
    None
):
    plan = decide([finding(codes.COUNT_VIOLATION, group=None)], tenant_facts=facts(free={E3: 10}))

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert "direct assignment" in decision.reason


def test_info_findings_and_findings_about_skus_and_groups_are_ignored() -> None:
    findings = [
        finding("MissingUsageLocation", severity=INFO, sku=None, group=None),
        finding("SeatShortfall", f"sku:{E3}", severity=WARNING, group=None),
        finding("NestedGroupMember", f"group:{G1}", severity=INFO, sku=None),
    ]

    plan = decide(findings, tenant_facts=facts(free={E3: 10}))

    assert dict(plan.users) == {}
    assert plan.groups == ()


# --------------------------------------------------------------------------- group processing


@pytest.mark.parametrize(
    "code", [codes.PENDING_GROUP_ASSIGNMENT, codes.STALE_GROUP_ASSIGNMENT, codes.PLAN_MISMATCH]
)
def test_pending_assignment_waits_until_group_processing_is_complete(code: str) -> None:
    processing = facts(processing={G1: "ProcessingInProgress"})

    waiting = decide([finding(code, severity=WARNING)], tenant_facts=processing)

    decision = waiting.users["u1"]
    assert isinstance(decision, RetryLater)
    assert decision.not_before == NOW + timedelta(minutes=15)
    assert "still processing" in decision.reason
    assert waiting.groups == ()

    history = dict(waiting.observations())
    done = facts(processing={G1: PROCESSING_COMPLETE}, now=NOW + timedelta(hours=2))
    ready = decide([finding(code, severity=WARNING)], history, done)
    assert ready.to_reprocess == ["u1"]


def test_an_unknown_group_processing_state_waits_too() -> None:
    plan = decide(
        [finding(codes.PENDING_GROUP_ASSIGNMENT)], tenant_facts=facts(processing={G1: None})
    )

    decision = plan.users["u1"]
    assert isinstance(decision, RetryLater)
    assert "licenseProcessingState=unknown" in decision.reason


@pytest.mark.parametrize("state", ["ProcessingInProgress", None])
def test_a_user_waiting_on_a_group_stuck_processing_is_looked_at_less_and_less_often(
    state: str | None,
) -> None:
    """Every look at a stuck group waited 15 minutes again: 96 recomputes a day per user for
    as long as it stayed in progress (or unknown). The wait doubles to 4 hours instead."""
    history: dict[str, list[Attempt]] = {}
    now, waits = NOW, []
    while now < NOW + timedelta(days=1):
        plan = decide(
            [finding(codes.PENDING_GROUP_ASSIGNMENT)], history, facts(None, {G1: state}, now)
        )
        decision = plan.users["u1"]
        assert isinstance(decision, RetryLater)
        for user_id, entries in plan.observations().items():
            history.setdefault(user_id, []).extend(entries)
        waits.append(decision.not_before - now)
        now = decision.not_before

    minutes = [int(w.total_seconds() // 60) for w in waits]
    assert minutes[:6] == [15, 15, 30, 60, 120, 240]
    assert max(minutes) == 240
    assert len(waits) < 12


def test_pending_assignment_is_reprocessed_once_per_completed_processing_run() -> None:
    complete = ("licenseProcessingState=ProcessingComplete", "after=none")
    history = {
        "u1": [attempted(NOW - timedelta(days=1), codes.PENDING_GROUP_ASSIGNMENT, *complete)]
    }

    again = decide([finding(codes.PENDING_GROUP_ASSIGNMENT)], history)
    assert again.to_reprocess == []
    assert "already reprocessed" in again.users["u1"].reason

    reprocessing = NOW - timedelta(hours=3)
    history["u1"].append(
        observed(reprocessing, codes.PENDING_GROUP_ASSIGNMENT, "licenseProcessingState=InProgress")
    )
    after_new_run = decide([finding(codes.PENDING_GROUP_ASSIGNMENT)], history)
    assert after_new_run.to_reprocess == ["u1"]


# --------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("attempts", "wait"),
    [(1, timedelta(minutes=15)), (2, timedelta(minutes=30)), (3, timedelta(hours=1))],
)
def test_backoff_doubles_with_each_attempt_for_the_same_cause(
    attempts: int, wait: timedelta
) -> None:
    last = NOW - timedelta(minutes=1)
    history = {
        "u1": [
            attempted(
                last - timedelta(days=i), codes.PROHIBITED_IN_USAGE_LOCATION, f"usageLocation={i}"
            )
            for i in range(attempts)
        ]
    }
    changed = finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=("usageLocation=US",))

    plan = decide([changed], history)

    decision = plan.users["u1"]
    assert isinstance(decision, RetryLater)
    assert decision.not_before == last + wait
    assert "backing off" in decision.reason
    assert decision.observe == ()  # the change must still read as a change once the wait is over


def test_backoff_is_capped() -> None:
    tenant_facts = facts(backoff_cap=timedelta(hours=2))
    assert [tenant_facts.backoff(n) for n in (0, 1, 4, 5, 500)] == [
        timedelta(0),
        timedelta(minutes=15),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    assert facts().backoff(10_000) == timedelta(hours=24)


def test_a_change_is_reprocessed_once_the_backoff_has_passed() -> None:
    history = {
        "u1": [
            attempted(NOW - timedelta(minutes=16), codes.PROHIBITED_IN_USAGE_LOCATION, *LOCATION_DE)
        ]
    }
    changed = finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=("usageLocation=US",))

    assert decide([changed], history).to_reprocess == ["u1"]


def test_backoff_counts_only_attempts_of_the_same_cause_key() -> None:
    history = {
        "u1": [
            attempted(NOW - timedelta(minutes=1), codes.PROHIBITED_IN_USAGE_LOCATION, *LOCATION_DE),
        ]
    }
    other_sku_group = finding(codes.COUNT_VIOLATION, sku=E5, group=G2)

    plan = decide([other_sku_group], history, facts(free={E5: 1}))

    assert plan.to_reprocess == ["u1"]


# --------------------------------------------------------------------------- mass failures


def test_more_than_25_users_with_the_same_group_sku_and_error_become_one_group_alert() -> None:
    users = [f"u{i:02d}" for i in range(26)]
    findings = [finding(codes.COUNT_VIOLATION, u) for u in users]

    plan = decide(findings, tenant_facts=facts(free={E3: 100}))

    assert plan.to_reprocess == []
    assert dict(plan.users) == {}
    (alert,) = plan.groups
    assert isinstance(alert, GroupAlert)
    assert (alert.group_id, alert.sku_id, alert.code) == (G1, E3, codes.COUNT_VIOLATION)
    assert alert.user_ids == tuple(users)
    # since September 2024 group licensing is managed in the Microsoft 365 admin center; the
    # Entra admin center's group Reprocess button is gone
    assert "reprocess the group's users in error in the Microsoft 365 admin center" in alert.reason
    assert "Billing > Licenses > the product > Groups > the group" in alert.reason
    assert "Entra admin center" not in alert.reason
    assert "write budget" in alert.reason
    assert len(plan.observations()) == 26


def test_25_users_with_the_same_error_are_still_decided_one_by_one() -> None:
    findings = [finding(codes.COUNT_VIOLATION, f"u{i:02d}") for i in range(25)]

    plan = decide(findings, tenant_facts=facts(free={E3: 100}))

    assert plan.groups == ()
    assert len(plan.to_reprocess) == 25


def test_the_group_threshold_is_a_tenant_fact() -> None:
    findings = [finding(codes.COUNT_VIOLATION, f"u{i}") for i in range(3)]

    plan = decide(findings, tenant_facts=facts(free={E3: 100}, group_threshold=2))

    assert [g.user_ids for g in plan.groups] == [("u0", "u1", "u2")]


def test_a_group_alert_counts_the_users_of_earlier_pages_it_was_raised_for() -> None:
    """The nightly's later page holds 1 of the group's failing users, its earlier pages 30: the
    alert says 31 users have the error (it was raised for them), not "1 users"."""
    [cause] = decide([finding(codes.COUNT_VIOLATION, "u1")]).users["u1"].causes
    elsewhere = {cause.key: 30}

    plan = decide(
        [finding(codes.COUNT_VIOLATION, "u1")],
        tenant_facts=facts(free={E3: 100}, failing_elsewhere=elsewhere),
    )

    [alert] = plan.groups
    assert alert.user_ids == ("u1",)
    assert alert.reason.startswith(f"31 users of group {G1} (1 in this batch) have CountViolation")


def test_a_group_alert_does_not_hide_the_users_other_findings() -> None:
    findings = [finding(codes.COUNT_VIOLATION, f"u{i:02d}") for i in range(26)]
    findings.append(finding(codes.PENDING_GROUP_ASSIGNMENT, "u00", sku=E5, group=G2))

    plan = decide(findings, tenant_facts=facts(free={E3: 100}))

    assert len(plan.groups) == 1
    assert plan.to_reprocess == ["u00"]
    decision = plan.users["u00"]
    assert [c.code for c in decision.causes] == [codes.PENDING_GROUP_ASSIGNMENT]


def test_a_group_that_is_still_processing_never_becomes_a_group_alert() -> None:
    findings = [finding(codes.PENDING_GROUP_ASSIGNMENT, f"u{i:02d}") for i in range(40)]

    plan = decide(findings, tenant_facts=facts(processing={G1: "QueuedForProcessing"}))

    assert plan.groups == ()
    assert len(plan.retry_later) == 40


# --------------------------------------------------------------------------- one decision per user


def test_a_user_with_several_findings_gets_one_decision_covering_the_qualifying_causes() -> None:
    findings = [
        finding(codes.UNIQUENESS_VIOLATION, sku=E5, group=G2),
        finding(codes.PROHIBITED_IN_USAGE_LOCATION, evidence=LOCATION_DE),
        finding(codes.COUNT_VIOLATION, sku=E5, group=G1),
    ]

    plan = decide(findings, tenant_facts=facts(free={E5: 1}))

    assert list(plan.users) == ["u1"]
    decision = plan.users["u1"]
    assert isinstance(decision, ReprocessNow)
    assert [c.code for c in decision.causes] == [codes.COUNT_VIOLATION]
    # the location alert is not lost: the caller still records what was seen
    assert [c.code for c in decision.observe] == [codes.PROHIBITED_IN_USAGE_LOCATION]


def test_retry_later_wins_over_alerts_and_uses_the_earliest_not_before() -> None:
    history = {
        "u1": [
            attempted(NOW - timedelta(minutes=5), codes.MUTUALLY_EXCLUSIVE, "a"),
            attempted(NOW - timedelta(minutes=20), codes.MUTUALLY_EXCLUSIVE, "x", group=G2),
            attempted(NOW - timedelta(minutes=10), codes.MUTUALLY_EXCLUSIVE, "y", group=G2),
        ]
    }
    findings = [
        finding(codes.UNIQUENESS_VIOLATION, sku=E5),
        finding(codes.MUTUALLY_EXCLUSIVE, evidence=("b",)),
        finding(codes.MUTUALLY_EXCLUSIVE, group=G2, evidence=("z",)),
    ]

    plan = decide(findings, history)

    decision = plan.users["u1"]
    assert isinstance(decision, RetryLater)
    assert decision.not_before == NOW + timedelta(minutes=10)  # G1: last 5 min ago + 15 min
    assert {c.group_id for c in decision.causes} == {G1, G2}
    assert all(c.code == codes.MUTUALLY_EXCLUSIVE for c in decision.causes)


def test_alert_instead_lists_every_cause_and_reason_when_nothing_qualifies() -> None:
    findings = [
        finding(codes.UNIQUENESS_VIOLATION),
        finding(codes.COUNT_VIOLATION, sku=E5, group=G2),
    ]

    plan = decide(findings, tenant_facts=facts(free={E5: 0}))

    decision = plan.users["u1"]
    assert isinstance(decision, AlertInstead)
    assert {c.code for c in decision.causes} == {codes.UNIQUENESS_VIOLATION, codes.COUNT_VIOLATION}
    assert "proxy address" in decision.reason
    assert "buy or free seats" in decision.reason


def test_users_are_ordered_by_their_oldest_finding_then_by_id() -> None:
    findings = [
        finding(codes.UNIQUENESS_VIOLATION, "b"),
        finding(codes.UNIQUENESS_VIOLATION, "a"),
        finding(codes.UNIQUENESS_VIOLATION, "c", since="2026-01-01T00:00:00Z"),
    ]

    assert list(decide(findings).users) == ["c", "a", "b"]


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TenantFacts(now=datetime(2026, 3, 2, 12, 0), free_seats={}, group_processing={})  # noqa: DTZ001


# --------------------------------------------------------------------------- the caller's loop


def _run(
    rounds: int,
    findings: Sequence[Finding],
    free: Mapping[str, int],
    step: timedelta = timedelta(hours=1),
) -> tuple[list[ReprocessPlan], dict[str, list[Attempt]]]:
    """A caller that follows the ledger contract while every reprocess fails the same way."""
    ledger: dict[str, list[Attempt]] = {}
    plans = []
    for i in range(rounds):
        plan = decide(findings, ledger, facts(free=free, now=NOW + i * step))
        plans.append(plan)
        for user_id in plan.to_reprocess:
            decision = plan.users[user_id]
            assert isinstance(decision, ReprocessNow)
            ledger.setdefault(user_id, []).extend(decision.attempts(plan.decided_at))
        for user_id, entries in plan.observations().items():
            ledger.setdefault(user_id, []).extend(entries)
    return plans, ledger


def test_a_caller_following_the_ledger_contract_never_loops_on_a_persistent_error() -> None:
    findings = [
        finding(codes.COUNT_VIOLATION, "seats"),
        finding(codes.PROHIBITED_IN_USAGE_LOCATION, "location", evidence=LOCATION_DE),
        finding(codes.PENDING_GROUP_ASSIGNMENT, "pending"),
    ]

    plans, ledger = _run(48, findings, free={E3: 4})

    reprocessed = [u for p in plans for u in p.to_reprocess]
    assert sorted(reprocessed) == ["pending", "seats"]  # once each; the location never changed
    assert len(ledger["location"]) == 1  # one observation, not one per round


def test_evaluated_findings_flow_into_the_policy() -> None:
    plans = (ServicePlan("p1", "EXCHANGE_S_ENTERPRISE"),)
    e3 = Sku(E3, "ENTERPRISEPACK", plans, PrepaidUnits(enabled=3), consumed=2)

    def member(uid: str, since: str, location: str = "US", error: str = "CountViolation") -> User:
        state = AssignmentState(E3, G1, state="Error", error=error, last_updated=since)
        return User(uid, f"{uid}@contoso.com", uid, usage_location=location, states=(state,))

    users = [
        member("late", "2026-03-01T00:00:00Z"),
        member("early", "2026-02-01T00:00:00Z"),
        member("cuba", "2026-02-01T00:00:00Z", "CU", "ProhibitedInUsageLocationViolation"),
    ]
    group = Group(
        G1,
        "E3 users",
        licenses=(LicenseAssignment(E3),),
        member_user_ids=tuple(u.id for u in users),
        processing_state=PROCESSING_COMPLETE,
    )
    tenant = Tenant({E3: e3}, {G1: group}, {u.id: u for u in users})
    found = evaluate(tenant).findings()
    free = {s.id: s.prepaid.enabled - s.consumed for s in tenant.skus.values()}

    plan = decide(found, tenant_facts=facts(free=free))

    assert plan.to_reprocess == ["early"]
    assert isinstance(plan.users["late"], RetryLater)
    cuba = plan.users["cuba"]
    assert isinstance(cuba, AlertInstead)
    assert cuba.causes[0].evidence == ("usageLocation=CU",)


# --------------------------------------------------------------------------- properties

_users = st.sampled_from([f"user-{i}" for i in range(8)])
_codes = st.sampled_from(
    [
        codes.COUNT_VIOLATION,
        codes.MUTUALLY_EXCLUSIVE,
        codes.PROHIBITED_IN_USAGE_LOCATION,
        codes.PENDING_GROUP_ASSIGNMENT,
        codes.UNIQUENESS_VIOLATION,
    ]
)
_skus = st.sampled_from([E3, E5])
_groups = st.sampled_from([G1, G2, None])
_evidence = st.sampled_from([(), ("usageLocation=DE",), ("usageLocation=US",)])
_since = st.sampled_from([None, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"])
_findings = st.lists(
    st.builds(finding, _codes, _users, sku=_skus, group=_groups, since=_since, evidence=_evidence),
    max_size=30,
)
_history = st.dictionaries(
    _users,
    st.lists(
        st.builds(
            Attempt,
            st.integers(0, 72).map(lambda h: NOW - timedelta(hours=h)),
            st.builds(Cause, _codes, _skus, _groups, _evidence),
            st.booleans(),
        ),
        max_size=4,
    ),
    max_size=8,
)
_facts = st.builds(
    facts,
    free=st.fixed_dictionaries({E3: st.integers(0, 4), E5: st.integers(0, 4)}),
    processing=st.fixed_dictionaries(
        {G1: st.sampled_from([PROCESSING_COMPLETE, "ProcessingInProgress"]), G2: st.none()}
    ),
    group_threshold=st.integers(1, 5),
)


def never_more_count_violation_reprocesses_per_sku_than_free_seats(
    plan: ReprocessPlan, history: dict[str, list[Attempt]], tenant_facts: TenantFacts
) -> None:
    for sku in (E3, E5):
        for_seats = [
            u
            for u in plan.to_reprocess
            if any(
                c.code == codes.COUNT_VIOLATION and c.sku_id == sku for c in plan.users[u].causes
            )
        ]
        assert len(for_seats) <= tenant_facts.free_seats[sku]


def a_cause_already_attempted_with_equal_evidence_is_never_reprocessed(
    plan: ReprocessPlan, history: dict[str, list[Attempt]], tenant_facts: TenantFacts
) -> None:
    for user_id in plan.to_reprocess:
        done = {a.cause for a in history.get(user_id, ()) if a.reprocessed}
        assert not done & set(plan.users[user_id].causes)


@pytest.mark.parametrize(
    "invariant",
    [
        never_more_count_violation_reprocesses_per_sku_than_free_seats,
        a_cause_already_attempted_with_equal_evidence_is_never_reprocessed,
    ],
    ids=lambda invariant: invariant.__name__,
)
@settings(max_examples=200, deadline=None)
@given(_findings, _history, _facts)
def test_every_plan_keeps_the_invariant(
    invariant: Callable[[ReprocessPlan, dict[str, list[Attempt]], TenantFacts], None],
    findings: list[Finding],
    history: dict[str, list[Attempt]],
    tenant_facts: TenantFacts,
) -> None:
    invariant(decide_reprocess(findings, history, tenant_facts), history, tenant_facts)


@settings(max_examples=100, deadline=None)
@given(_findings, _history, _facts, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_of_findings_or_history(
    findings: list[Finding],
    history: dict[str, list[Attempt]],
    tenant_facts: TenantFacts,
    rng: random.Random,
) -> None:
    shuffled_findings = rng.sample(findings, len(findings))
    shuffled_history = {u: rng.sample(h, len(h)) for u, h in history.items()}

    first = decide_reprocess(findings, history, tenant_facts)
    second = decide_reprocess(shuffled_findings, shuffled_history, tenant_facts)

    assert list(first.users.items()) == list(second.users.items())
    assert first.groups == second.groups


def test_a_group_alert_with_enough_free_seats_does_not_say_to_buy_seats() -> None:
    """26 users wait for E3 and 100 seats are free: the alert said '(100 free seats now): ...
    buy or free seats of SKU sku-e3', a purchase the tenant does not need."""
    findings = [finding(codes.COUNT_VIOLATION, f"u{i:02d}") for i in range(26)]

    (alert,) = decide(findings, tenant_facts=facts(free={E3: 100})).groups
    (short,) = decide(findings, tenant_facts=facts(free={E3: 10})).groups

    assert "(100 free seats now)" in alert.reason
    assert "buy" not in alert.reason
    assert "reprocess the group's users in error" in alert.reason
    assert "buy or free seats of SKU sku-e3" in short.reason


def test_a_user_reprocessed_now_says_when_its_waiting_causes_are_due() -> None:
    findings = [
        finding(codes.COUNT_VIOLATION),
        finding(codes.PENDING_GROUP_ASSIGNMENT, sku=E5, group=G2),
    ]
    processing = {G1: PROCESSING_COMPLETE, G2: "ProcessingInProgress"}

    decision = decide(findings, tenant_facts=facts({E3: 1}, processing)).users["u1"]
    alone = decide(findings[:1], tenant_facts=facts({E3: 1}, processing)).users["u1"]

    assert isinstance(decision, ReprocessNow)
    assert [c.code for c in decision.causes] == [codes.COUNT_VIOLATION]
    assert decision.retry_at == NOW + timedelta(minutes=15)
    assert isinstance(alone, ReprocessNow)
    assert alone.retry_at is None


def test_a_user_left_waiting_for_one_product_of_a_group_is_not_reprocessed_for_the_other() -> None:
    """A group of E3 and E5, all-or-none: three users failed both, E3 has one free seat and E5
    plenty. Only the oldest error gets the E3 seat; the other two were still reprocessed for
    E5 and failed again (their group's E3 had no seat for them), racing the oldest for it."""
    users = {"u-old": "2026-03-01T08:00:00Z", "u-mid": "2026-03-01T09:00:00Z"}
    users["u-new"] = "2026-03-01T10:00:00Z"
    findings = [
        finding(codes.COUNT_VIOLATION, user, sku=sku, since=since)
        for user, since in users.items()
        for sku in (E3, E5)
    ]

    plan = decide(findings, tenant_facts=facts(free={E3: 1, E5: 25}))

    assert plan.to_reprocess == ["u-old"]
    for user in ("u-mid", "u-new"):
        decision = plan.users[user]
        assert isinstance(decision, RetryLater)
        assert f"waiting for a free seat of {E3}" in decision.reason
