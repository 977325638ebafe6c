"""The two brakes on a reprocess plan: mass failures and the seat budget.

Many users failing alike in one group + SKU + code have one cause and one fix, so they become
one `GroupAlert` instead of thousands of reprocess calls; and CountViolation reprocesses stay
within each SKU's free seats, oldest errors first. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from types import MappingProxyType

from shared.core.findings import (
    COUNT_VIOLATION,
    GROUP_REPROCESS,
    MUTUALLY_EXCLUSIVE,
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    PROHIBITED_IN_USAGE_LOCATION,
    STALE_GROUP_ASSIGNMENT,
    seats_of,
)
from shared.core.reprocess_fixes import seats_fix_of
from shared.core.reprocess_ledger import Ledger, needs_record, since_key
from shared.core.reprocess_plan import GroupAlert, TenantFacts
from shared.core.reprocess_verdicts import LATER, NOW, Candidate, Verdict

_GROUP_FIX = MappingProxyType(
    {
        MUTUALLY_EXCLUSIVE: "remove the plan conflict from the group's license or its members",
        PROHIBITED_IN_USAGE_LOCATION: (
            "correct the members' usage locations or keep those locations out of the group"
        ),
        PENDING_GROUP_ASSIGNMENT: "check the group's license configuration and its audit log",
        STALE_GROUP_ASSIGNMENT: "check the group's license configuration and its audit log",
        PLAN_MISMATCH: "check the group's disabled plans and its audit log",
    }
)

Bucket = tuple[str, str | None, str]
"""A mass-failure bucket: group id, SKU id, code."""


def mass_failures(
    candidates: list[Candidate], threshold: int, elsewhere: Mapping[str, int]
) -> dict[Bucket, list[Candidate]]:
    """The buckets of more than `threshold` users among candidates that qualify for a group
    alert, with the users counted toward each `elsewhere` (by `Cause.key`).

    The caller passes only group-based, reprocessable candidates that are not waiting for their
    group to finish processing."""
    buckets: dict[Bucket, list[Candidate]] = defaultdict(list)
    for c in candidates:
        buckets[(c.cause.group_id or "", c.cause.sku_id, c.cause.code)].append(c)
    return {
        bucket: members
        for bucket, members in sorted(buckets.items(), key=lambda kv: _bucket_order(kv[0]))
        if len({m.user_id for m in members}) + elsewhere.get(members[0].cause.key, 0) > threshold
    }


def _bucket_order(bucket: Bucket) -> tuple[str, str, str]:
    return (bucket[0], bucket[1] or "", bucket[2])


def group_alert(
    bucket: Bucket,
    members: list[Candidate],
    ledgers: Mapping[str, Ledger],
    facts: TenantFacts,
) -> GroupAlert:
    group_id, sku_id, code = bucket
    user_ids = tuple(sorted({m.user_id for m in members}))
    total = len(user_ids) + facts.failing_elsewhere.get(members[0].cause.key, 0)
    seats, fix = "", _GROUP_FIX.get(code, "fix the group") + ", then"
    if code == COUNT_VIOLATION:
        seats = f" ({max(0, facts.free_seats.get(sku_id or '', 0))} free seats now)"
        waits = sorted({s for m in members for s in seats_of(m.finding)})
        # all-or-none: with free seats of its own, the group's other product is short of seats
        needed = [(s, f"SKU {s}, the group's other product") for s in waits]
        needed = needed or [(sku_id or "", f"SKU {sku_id}")]
        # seats enough for every user already: nothing to buy, only the reprocess is missing
        short = [(s, label) for s, label in needed if facts.free_seats.get(s, 0) < total]
        fix = f"{seats_fix_of(short, facts)}, then" if short else "the seats are free now, so"
    counted = f"{total} users of group {group_id}" if total != 1 else f"1 user of group {group_id}"
    if total != len(user_ids):  # a nightly page: the run's earlier pages hold the others
        counted += f" ({len(user_ids)} in this batch)"
    counted += " have" if total != 1 else " has"
    reason = (
        f"{counted} {code} for SKU {sku_id}{seats}: one cause, one fix - {fix} "
        f"{GROUP_REPROCESS}; reprocessing the users one by "
        "one would spend Graph's write budget for nothing"
    )
    observe = tuple(
        (m.user_id, m.cause) for m in members if needs_record(ledgers[m.user_id], m.cause)
    )
    return GroupAlert(group_id, sku_id, code, user_ids, reason, observe)


def apply_seat_budget(
    verdicts: dict[str, list[Verdict]],
    since: Mapping[tuple[str, str], str | None],
    facts: TenantFacts,
) -> None:
    """Keep CountViolation reprocesses within each SKU's free seats, oldest errors first. A
    group assigns its products all or none: a user left waiting for a seat of one of them is
    not reprocessed for the group's others either (it would fail again, and race the users
    given that seat)."""
    wanting: dict[str, set[str]] = defaultdict(set)
    for user_id, user_verdicts in verdicts.items():
        for v in user_verdicts:
            if v.action == NOW and v.cause.code == COUNT_VIOLATION:
                for sku_id in _seat_skus(v):
                    wanting[sku_id].add(user_id)
    left: dict[str, dict[str, str]] = defaultdict(dict)  # user -> group -> SKU left waiting
    for sku_id, users in wanting.items():
        free = max(0, facts.free_seats.get(sku_id, 0))
        ranked = sorted(users, key=lambda u: (since_key(since.get((u, sku_id))), u))
        for user_id in ranked[free:]:
            for v in verdicts[user_id]:
                if _wants_seat(v, sku_id) and v.cause.group_id:
                    left[user_id].setdefault(v.cause.group_id, sku_id)
            verdicts[user_id] = [
                Verdict(
                    v.cause,
                    LATER,
                    f"waiting for a free seat of {sku_id}: the {free} free seat(s) go to users "
                    "whose error is older",
                    facts.now + facts.backoff_base,
                )
                if _wants_seat(v, sku_id)
                else v
                for v in verdicts[user_id]
            ]
    for user_id, short in left.items():
        verdicts[user_id] = [
            Verdict(
                v.cause,
                LATER,
                f"waiting for a free seat of {short[v.cause.group_id]}: group "
                f"{v.cause.group_id} assigns its products all or none",
                facts.now + facts.backoff_base,
            )
            if v.action == NOW and v.cause.code == COUNT_VIOLATION and v.cause.group_id in short
            else v
            for v in verdicts[user_id]
        ]


def _wants_seat(verdict: Verdict, sku_id: str) -> bool:
    """A CountViolation reprocess decided for now that takes a seat of this SKU."""
    cause = verdict.cause
    return verdict.action == NOW and cause.code == COUNT_VIOLATION and sku_id in _seat_skus(verdict)


def _seat_skus(verdict: Verdict) -> tuple[str, ...]:
    """The SKUs a CountViolation verdict takes a seat of (its own, when it does not say)."""
    return verdict.seats if verdict.seats is not None else (verdict.cause.sku_id or "",)
