"""The user pipeline's pure decide step: seats promised to queued CountViolation reprocesses
are not free, and a CountViolation already in flight is not decided again."""

from __future__ import annotations

from shared.core.findings import COUNT_VIOLATION, PENDING_GROUP_ASSIGNMENT
from shared.core.model import PrepaidUnits, Sku, Tenant
from shared.core.reprocess import PROCESSING_COMPLETE, Cause, ReprocessNow
from shared.core.user_decisions import cause_key, decide_users, promised_seats
from tests.core.test_reprocess_policy import E3, E5, G1, NOW, finding


def tenant(enabled: int, consumed: int) -> Tenant:
    sku = Sku(E3, "E3", (), PrepaidUnits(enabled=enabled), consumed)
    return Tenant({E3: sku}, {}, {}, None)


def decide(t: Tenant, findings: list, in_flight: dict | None = None, promised: dict | None = None):
    return decide_users(
        t,
        findings,
        {},
        in_flight or {},
        now=NOW,
        processing={G1: PROCESSING_COMPLETE},
        promised_elsewhere=promised,
    )


def test_a_free_seat_reprocesses_a_count_violation() -> None:
    plan = decide(tenant(enabled=1, consumed=0), [finding(COUNT_VIOLATION, "u1")])
    assert isinstance(plan.users["u1"], ReprocessNow)


def test_a_seat_promised_elsewhere_is_not_free() -> None:
    plan = decide(tenant(1, 0), [finding(COUNT_VIOLATION, "u1")], promised={E3: 1})
    assert not isinstance(plan.users.get("u1"), ReprocessNow)


def test_a_seat_in_flight_is_not_free_and_its_count_violation_is_not_decided_again() -> None:
    findings = [finding(COUNT_VIOLATION, "u1"), finding(COUNT_VIOLATION, "u2")]
    plan = decide(tenant(1, 0), findings, in_flight={"u1": {E3}})
    assert "u1" not in plan.users
    assert not isinstance(plan.users.get("u2"), ReprocessNow)


def test_only_count_violations_promise_seats() -> None:
    decision = ReprocessNow(
        "u1",
        (Cause(COUNT_VIOLATION, E3, G1), Cause(PENDING_GROUP_ASSIGNMENT, E5, G1)),
        "because",
    )
    assert promised_seats(decision) == {E3}


def test_a_finding_names_its_cause_as_the_ledger_does() -> None:
    f = finding(COUNT_VIOLATION, "u1")
    assert cause_key(f) == Cause(f.code, f.sku_id, f.group_id).key
    # the stored form the reprocess ledger's rows are keyed by: code|sku|group, "-" for none
    assert cause_key(f) == f"{COUNT_VIOLATION}|{f.sku_id or '-'}|{f.group_id or '-'}"
    assert cause_key(f._replace(sku_id=None, group_id=None)) == f"{COUNT_VIOLATION}|-|-"
