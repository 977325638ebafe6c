"""Predicted assignment errors: what Entra would record if a planned change were made.

A change gives some users new license paths (a group gains a product, a user joins a licensed
group, a group enables more plans). For each such path this predicts the errors Entra documents
for group-based licensing (https://learn.microsoft.com/en-us/entra/identity/users/
licensing-groups-resolve-problems):

* `MutuallyExclusiveViolation`: a plan of the new path conflicts with a plan the user holds
  through another product (not through a path Graph shows in state Error: it grants none).
  Conflicting plan pairs come from a table built from Microsoft's documentation
  (`shared/data/plan-conflicts.csv`, each row with its source): an error. The product pairs
  the tenant's own error states show (a user in this error on product A while holding only B
  elsewhere; not A failing only with its group's other product, nor B when
  another user holds A and B together without error) name no plans: a warning.
* `CountViolation`: more users would newly need a product than it has free seats
  (`shared.core.predict_seats`). A user another certain error fails in a group takes no seat
  of its products (all-or-none).
* `ProhibitedInUsageLocationViolation`: the tenant already shows this error for the product at
  the same usage location (Microsoft publishes no table of prohibited locations).
* `MissingUsageLocation` (info): the user has none; Entra uses the tenant's country.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from shared.core.alerting import HOLDING_STATES, granting_licenses
from shared.core.effective import EffectiveLicense, Path
from shared.core.evaluate import Evaluation, failed_paths
from shared.core.findings import (
    COUNT_VIOLATION,
    ERROR,
    INFO,
    MISSING_USAGE_LOCATION,
    MUTUALLY_EXCLUSIVE,
    PROHIBITED_IN_USAGE_LOCATION,
    WARNING,
    Names,
)
from shared.core.model import PrepaidUnits, Tenant, User
from shared.core.plan_conflicts import PlanConflict
from shared.core.predict_evidence import conflicts_seen, prohibited_seen
from shared.core.predict_seats import (
    SeatNeed,
    count_message,
    free_after_waiting,
    lapsed_seats_free,
    seat_balance,
    waiting_users,
)

RESOLVE_PROBLEMS_DOC: Final = (
    "https://learn.microsoft.com/en-us/entra/identity/users/licensing-groups-resolve-problems"
)
TENANT_SOURCE: Final = "this tenant's licenseAssignmentStates"


@dataclass(frozen=True, slots=True)
class PredictedError:
    """One error Entra would likely record for a user's new path (group None = direct)."""

    user_id: str
    code: str
    severity: str
    sku_id: str
    group_id: str | None
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class Predictions:
    errors: tuple[PredictedError, ...]
    seats: tuple[SeatNeed, ...]
    failing: Mapping[str, int] = field(default_factory=dict)
    """Per SKU, the users who would newly hold it but whom a certain error other than
    CountViolation fails on every new path (they take no seat): not in `seats`, and to be
    taken out of the demand the evaluation of the tenant after counts."""

    def for_user(self, user_id: str) -> tuple[PredictedError, ...]:
        return tuple(e for e in self.errors if e.user_id == user_id)


# --------------------------------------------------------------------------- predictions


def _new_paths(
    before: Sequence[EffectiveLicense], after: Sequence[EffectiveLicense]
) -> list[tuple[EffectiveLicense, Path, frozenset[str]]]:
    """Paths after that are new, or enable plans their path did not before: (license, path,
    plans newly enabled by it)."""
    old = {(lic.sku_id, p.group_id): p.enabled_plans for lic in before for p in lic.paths}
    found = []
    for lic in after:
        for path in lic.paths:
            was = old.get((lic.sku_id, path.group_id))
            gained = path.enabled_plans if was is None else path.enabled_plans - was
            if gained:
                found.append((lic, path, gained))
    return found


def _conflict_index(table: Iterable[PlanConflict]) -> dict[str, list[tuple[str, PlanConflict]]]:
    index: dict[str, list[tuple[str, PlanConflict]]] = defaultdict(list)
    for row in table:
        if row.active:
            index[row.plan_a].append((row.plan_b, row))
            index[row.plan_b].append((row.plan_a, row))
    return index


def predict_errors(
    tenant: Tenant,
    before: Evaluation,
    after: Evaluation,
    table: Iterable[PlanConflict],
    names: Names,
) -> Predictions:
    """The errors the change would likely cause, for users with new or widened paths.

    `tenant` is the tenant before the change (its error states are the evidence); `names`
    should describe the tenant after (it names the groups the change creates paths from).
    """
    table = tuple(table)
    index = _conflict_index(table)
    seen_pairs = conflicts_seen(tenant, table)
    prohibited = prohibited_seen(tenant)
    country = tenant.organization.country if tenant.organization else None
    old = {r.user.id: r.licenses for r in before.users}
    # SKU -> user -> the groups (None: direct) of the new paths that would give it to them
    gaining: dict[str, dict[str, list[str | None]]] = defaultdict(dict)
    errors: list[PredictedError] = []
    for report in after.users:
        user, was = report.user, old.get(report.user.id, ())
        # what the user should hold, and what Graph shows them holding (a seat they keep: a
        # group path whose removal Entra has not processed yet, a license a dependency keeps)
        held_before = {lic.sku_id for lic in was} | {
            s.sku_id for s in user.states if s.state in HOLDING_STATES
        }
        # a product held only through paths Graph shows in state Error grants no plan to
        # conflict with (pending paths and the change's other new ones will grant theirs)
        holding = granting_licenses(user, report.licenses)
        for lic, path, plans in _new_paths(was, report.licenses):
            errors += _conflicts(user, lic, path, plans, holding, index, seen_pairs, names)
            if lic.sku_id not in held_before:
                gaining[lic.sku_id].setdefault(user.id, []).append(path.group_id)
                errors += _location(user, lic.sku_id, path.group_id, prohibited, country, names)
    blocked = _blocked_groups(errors)
    seats = []
    waiting = waiting_users(before, after)
    free = free_after_waiting(tenant, waiting)
    failing: Counter[str] = Counter()
    users = {r.user.id: r.user for r in after.users}
    for sku_id, paths in gaining.items():
        user_ids = [u for u, groups in paths.items() if not all((u, g) in blocked for g in groups)]
        # the after evaluation counts those it leaves out unless Graph shows them failing already
        kept = set(user_ids)
        failed = {u: g for u, g in paths.items() if u not in kept}
        failing[sku_id] = sum(
            any((sku_id, g) not in failed_paths(users[u]) for g in groups)
            for u, groups in failed.items()
        )
        if not user_ids:
            continue
        need = SeatNeed(sku_id, len(user_ids), free.get(sku_id, 0))
        seats.append(need)
        if need.short:
            sku = tenant.skus.get(sku_id)
            units = lapsed_seats_free(sku, seat_balance(sku, waiting)) if sku else PrepaidUnits()
            errors += _count(need, units, user_ids, after, names)
    return Predictions(tuple(_unique(errors)), tuple(seats), +failing)


def _blocked_groups(errors: Iterable[PredictedError]) -> set[tuple[str, str | None]]:
    """(user, group) pairs a certain error other than a want of seats fails: Entra assigns
    none of the group's products to the user (all-or-none), so the user takes no seat of any
    of them. Not a possible error (a warning), nor CountViolation itself: who gets the free
    seats is not said."""
    return {
        (e.user_id, e.group_id)
        for e in errors
        if e.severity == ERROR and e.code != COUNT_VIOLATION and e.group_id is not None
    }


def _unique(errors: Iterable[PredictedError]) -> list[PredictedError]:
    return list({(e.user_id, e.code, e.sku_id, e.group_id): e for e in errors}.values())


def _via(group_id: str | None, names: Names) -> str:
    return "a direct assignment" if group_id is None else names.group(group_id)


def _conflicts(
    user: User,
    lic: EffectiveLicense,
    path: Path,
    plans: frozenset[str],
    licenses: Sequence[EffectiveLicense],
    index: Mapping[str, list[tuple[str, PlanConflict]]],
    seen_pairs: Mapping[str, frozenset[str]],
    names: Names,
) -> list[PredictedError]:
    found = []
    for other in licenses:
        if other.sku_id == lic.sku_id:
            continue
        other_plans = {p.lower() for p in other.enabled_plans}
        clashes = [
            (mine, theirs, row)
            for mine in sorted(plans)
            for theirs, row in index.get(mine.lower(), ())
            if theirs in other_plans
        ]
        head = (
            f"{user.display_name} would get {names.product(lic.sku_id)} from "
            f"{_via(path.group_id, names)} while holding {names.product(other.sku_id)}"
        )
        if clashes:
            mine, _theirs, row = clashes[0]
            pair = f"{row.name_a if mine.lower() == row.plan_a else row.name_b} vs " + (
                row.name_b if mine.lower() == row.plan_a else row.name_a
            )
            severity, source = ERROR, row.source
            text = (
                f"{head}: {pair} cannot be held together, so Entra would record "
                f"{MUTUALLY_EXCLUSIVE} and assign none of that group's products to the user "
                "(all-or-none). Disable the conflicting plan in one of the two, or keep the "
                "user out of one of them."
            )
        elif other.sku_id in seen_pairs.get(lic.sku_id, ()):
            # Tenant evidence names products, not plans: a possibility, not a certainty.
            severity, source = WARNING, TENANT_SOURCE
            text = (
                f"{head}: this tenant already shows {MUTUALLY_EXCLUSIVE} between these two "
                "products for another user, so this may fail too unless the plans that "
                "conflicted there are disabled here."
            )
        else:
            continue
        found.append(
            PredictedError(
                user.id, MUTUALLY_EXCLUSIVE, severity, lic.sku_id, path.group_id, text, source
            )
        )
    return found


def _location(
    user: User,
    sku_id: str,
    group_id: str | None,
    prohibited: Mapping[str, frozenset[str]],
    country: str | None,
    names: Names,
) -> list[PredictedError]:
    location = (user.usage_location or country or "").upper()
    found = []
    if location and location in prohibited.get(sku_id, ()):
        found.append(
            PredictedError(
                user.id,
                PROHIBITED_IN_USAGE_LOCATION,
                ERROR,
                sku_id,
                group_id,
                f"{names.product(sku_id)} already fails in this tenant for users with usage "
                f"location {location}: {user.display_name} would get "
                f"{PROHIBITED_IN_USAGE_LOCATION} from {_via(group_id, names)}.",
                TENANT_SOURCE,
            )
        )
    if not user.usage_location:
        inherits = f"the tenant's country ({country})" if country else "the tenant's country"
        found.append(
            PredictedError(
                user.id,
                MISSING_USAGE_LOCATION,
                INFO,
                sku_id,
                group_id,
                f"{user.display_name} has no usage location: Entra would use {inherits} to "
                f"assign {names.product(sku_id)}; set it first if that is not where they work.",
                RESOLVE_PROBLEMS_DOC,
            )
        )
    return found


def _count(
    need: SeatNeed,
    units: PrepaidUnits,
    user_ids: Sequence[str],
    after: Evaluation,
    names: Names,
) -> list[PredictedError]:
    users = {r.user.id: r.user for r in after.users}
    product = names.product(need.sku_id)
    paths = {
        r.user.id: next(
            (p.group_id for lic in r.licenses if lic.sku_id == need.sku_id for p in lic.paths), None
        )
        for r in after.users
        if r.user.id in user_ids
    }
    return [
        PredictedError(
            user_id,
            COUNT_VIOLATION,
            ERROR,
            need.sku_id,
            paths.get(user_id),
            count_message(need, units, product, users[user_id].display_name),
            RESOLVE_PROBLEMS_DOC,
        )
        for user_id in dict.fromkeys(user_ids)
    ]
