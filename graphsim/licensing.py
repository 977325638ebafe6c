"""Entra group-based licensing (GBL), re-implemented from Microsoft's documentation.

This module plays Microsoft's part: it takes Graph-shaped JSON dicts (users, groups,
subscribedSkus, exactly as ``GET`` returns them) and recomputes the licensing outcome for the
users it is told about, mutating the dicts in place. This module is the entry point
(:func:`process_users`); the pieces are :mod:`graphsim.license_rules` (states, errors, tenant
rules), :mod:`graphsim.memberships` (who licenses whom), :mod:`graphsim.license_paths`
(per-call precomputation), :mod:`graphsim.user_recompute` (one user) and
:mod:`graphsim.license_status` (reading the outcome). References are to
``/work/shared/graph-facts.md`` (§3 licensing fields, §4 GBL semantics), which paraphrases
learn.microsoft.com.

Rules implemented (each cited where it is applied):

* Only first-level *user* members of a licensed group get its licenses; nested groups grant
  nothing (§4.1 "Nested groups are NOT supported").
* A SKU from several paths (direct + groups) consumes ONE seat and enables the union of the
  paths' enabled plans (§4.1 "Resulting state = union ...").
* All-or-none per group: if any product of a group fails for a user, none of that group's
  products is assigned (§4.1, licensing-groups-resolve-problems).
* Errors (§3.2, §4.2): CountViolation, MutuallyExclusiveViolation, DependencyViolation,
  ProhibitedInUsageLocationViolation, UniquenessViolation.
* No automatic retry (§3.4): freed seats do not fix users in CountViolation; only recomputing
  the user (a reprocess or a change that touches them) does. ``process_users`` therefore
  recomputes exactly the users it is given and nobody else.

Behaviour choices where the documentation is silent (documented, not Microsoft statements):

* Error code of sibling products (all-or-none): every entry of a failing group gets state
  ``Error``. A product that failed carries its own error; products that would have succeeded
  carry the group's *first* failure (in the group's ``assignedLicenses`` order), so every
  entry explains why it is not applied.
* Check order per product: UniquenessViolation, ProhibitedInUsageLocationViolation,
  MutuallyExclusiveViolation, CountViolation. The seat check comes last so a product that fails
  for another reason never takes a seat.
* Seat order inside one ``process_users`` call: users who need no new seat are recomputed
  first (so seats freed by leavers in the same batch are available), then users who want a new
  seat, each group in sorted user-id order; newcomers are seated first-come while
  ``prepaidUnits.enabled - consumedUnits > 0``. Users already holding a seat keep it.
* Mutual exclusion: a path that was already applied (state Active/ActiveWithError before this
  recomputation) keeps working; new paths are checked against it. Direct assignments always
  count as applied (``assignLicense`` validates them synchronously, §3.5). Among new group
  paths the group with the smaller id wins. Products of the *same* group are not checked
  against each other.
* Dependencies (``planDependencies``: dependent plan -> any one of the required plans):
  a dependent plan whose prerequisites are enabled on no path the user holds is disabled in the
  user's ``assignedLicenses``/``assignedPlans`` (§4.1 "or the dependent plan is disabled");
  the assignment entry still shows the group's own ``disabledPlans``. When a path would
  disappear but a plan on another held path depends on a plan only that path provides, the
  path is kept with ``ActiveWithError``/``DependencyViolation`` (§4.2) until the dependent
  goes away or the user rejoins.
* ``usageLocation`` missing: the tenant country is used for the check and never written back
  (§4.2 "users without one inherit the directory's location ... never overwrites").
* Direct assignments (``assignedByGroup`` null) are input set by ``assignLicense``; they are
  kept untouched and hold their SKU unless their state is ``Error``. They take a seat even if
  the SKU is full (the HTTP layer refuses over-assignment before it gets here).
* ``assignedPlans``: one entry per enabled plan (deduplicated across SKUs), capabilityStatus
  ``Enabled``; lost plans are dropped (Graph would age them through Suspended/Deleted, §3.1;
  nothing here reads that history). New entries are shared between users when identical to
  save memory at 100k users: treat them as immutable, replace rather than mutate.
* A group with ``securityEnabled`` false grants nothing (only security-enabled groups can be
  licensed, §4.1). A SKU missing from ``skus`` has no seats, hence CountViolation.
* Disabled accounts are licensed like everyone else (they still consume seats).
* State ``Disabled`` is never produced (it would need subscription suspension, not modelled).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .license_paths import LicensePath, RecomputeContext
from .license_rules import LicensingRules
from .memberships import index_memberships
from .user_recompute import recompute_user

Json = dict[str, Any]


def process_users(
    user_ids: Iterable[str],
    users: Mapping[str, Json],
    groups: Mapping[str, Mapping[str, Any]],
    skus: Mapping[str, Json],
    rules: LicensingRules,
    now: datetime,
    index: Mapping[str, Iterable[str]] | None = None,
) -> set[str]:
    """Recompute the group-based licensing of ``user_ids``; return the ids whose state changed.

    Mutates the users (licenseAssignmentStates, assignedLicenses, assignedPlans) and the SKUs'
    consumedUnits. Unknown ids are ignored. Entra does not retry anyone by itself (§3.4): only
    the users passed here are recomputed. Order: users needing no new seat first, then the
    rest, each in sorted id order (see module docstring).
    """
    if index is None:
        index = index_memberships(groups)
    with paused_cyclic_gc():
        ctx = RecomputeContext(groups, skus, rules, now)
        keep: list[tuple[str, list[tuple[str, tuple[LicensePath, ...]]]]] = []
        want: list[tuple[str, list[tuple[str, tuple[LicensePath, ...]]]]] = []
        for uid in sorted(set(user_ids)):
            user = users.get(uid)
            if user is None:
                continue
            licensed = [(g, ctx.group_paths(g)) for g in sorted(index.get(uid, ()))]
            licensed = [(g, paths) for g, paths in licensed if paths]
            held = {lic.get("skuId") for lic in user.get("assignedLicenses") or []}
            wanted = {p.sku for _, paths in licensed for p in paths}
            wanted.update(
                e.get("skuId")
                for e in user.get("licenseAssignmentStates") or []
                if e.get("assignedByGroup") is None
            )
            (want if wanted - held else keep).append((uid, licensed))
        changed: set[str] = set()
        for uid, licensed in keep + want:
            if recompute_user(users[uid], licensed, ctx):
                changed.add(uid)
    return changed


@contextmanager
def paused_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic GC while building or processing a big tenant.

    A 100k-user pass allocates millions of acyclic dicts and lists; repeated generation-2
    scans over the whole tenant would cost ~40% of the run. Nesting is safe.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
