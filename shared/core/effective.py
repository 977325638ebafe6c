"""Effective licenses: what each user *should* hold, from memberships and direct assignments.

This is Entra's documented group-based licensing arithmetic, recomputed independently of what
Graph reports so the two can be compared:

* every licensed group a user is a *direct* member of is a path for each of the group's SKUs
  (nested groups grant nothing);
* a direct assignment (a licenseAssignmentState whose assignedByGroup is null) is a path too;
* a SKU granted by several paths consumes one seat, and a plan is enabled if any path enables it.

Pure: no I/O, no clock. Enabled-plan sets are shared between users that hold the same paths,
so a 100k-user tenant costs little more than its memberships.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

from shared.core.model import Group, Sku, Tenant, User

DIRECT = "direct"
GROUP = "group"


@dataclass(frozen=True, slots=True)
class Path:
    """How a SKU reaches a user: directly, or through one group."""

    kind: str
    group_id: str | None
    enabled_plans: frozenset[str]

    @property
    def is_direct(self) -> bool:
        return self.kind == DIRECT


@dataclass(frozen=True, slots=True)
class EffectiveLicense:
    sku_id: str
    paths: tuple[Path, ...]
    enabled_plans: frozenset[str]
    disabled_plans: frozenset[str]

    @property
    def direct_path(self) -> Path | None:
        return next((p for p in self.paths if p.is_direct), None)

    @property
    def group_paths(self) -> tuple[Path, ...]:
        return tuple(p for p in self.paths if not p.is_direct)


def licensed_groups_by_user(groups: Iterable[Group]) -> dict[str, tuple[Group, ...]]:
    """Index direct user members of licensed groups: the only members Entra licenses.

    Users in the same licensed groups share one tuple, so later stages can do the work of a
    combination of groups once (a 100k-user tenant has a few tens of thousands).
    """
    index: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        if group.licenses:
            for user_id in group.member_user_ids:
                member_of = index[user_id]
                if not member_of or member_of[-1] is not group:  # a member listed twice
                    member_of.append(group)
    shared: dict[tuple[str, ...], tuple[Group, ...]] = {}
    combinations: dict[str, tuple[Group, ...]] = {}
    for user_id, member_of in index.items():
        key = tuple([g.id for g in member_of])
        combination = shared.get(key)
        if combination is None:
            combination = shared[key] = tuple(member_of)
        combinations[user_id] = combination
    return combinations


class PathCache:
    """Builds each Path, and each combination of paths, once for all users who share it."""

    def __init__(self, skus: Mapping[str, Sku]) -> None:
        self._skus = skus
        self._paths: dict[tuple[str, str | None, frozenset[str]], Path] = {}
        self._group_paths: dict[str, tuple[tuple[str, Path], ...]] = {}
        self._group_licenses: dict[str, tuple[EffectiveLicense, ...]] = {}
        # keyed on the paths' ids: paths are shared (see `path`) and live as long as the cache
        self._by_paths: dict[tuple[object, ...], EffectiveLicense] = {}
        self.licenses: dict[object, tuple[EffectiveLicense, ...]] = {}
        # a user with no direct assignment: keyed on the combination's identity (see
        # `licensed_groups_by_user`); the value keeps the tuple alive so its id is not reused
        self.by_groups: dict[int, tuple[tuple[Group, ...], tuple[EffectiveLicense, ...]]] = {}

    def path(self, kind: str, group_id: str | None, sku_id: str, disabled: frozenset[str]) -> Path:
        key = (sku_id, group_id, disabled)
        path = self._paths.get(key)
        if path is None:
            sku = self._skus.get(sku_id)
            plan_ids = sku.plan_ids if sku else frozenset()
            path = Path(kind, group_id, plan_ids - disabled)
            self._paths[key] = path
        return path

    def group_paths(self, group: Group) -> tuple[tuple[str, Path], ...]:
        """A group's (SKU, path) pairs, SKUs the tenant no longer subscribes to left out."""
        paths = self._group_paths.get(group.id)
        if paths is None:
            paths = self._group_paths[group.id] = tuple(
                (lic.sku_id, self.path(GROUP, group.id, lic.sku_id, lic.disabled_plans))
                for lic in group.licenses
                if lic.sku_id in self._skus
            )
        return paths

    def group_licenses(self, group: Group) -> tuple[EffectiveLicense, ...]:
        """Each of `group_paths(group)` as a license of its own path: what the group's members
        hold when no other path gives them the same SKU."""
        licenses = self._group_licenses.get(group.id)
        if licenses is None:
            licenses = self._group_licenses[group.id] = tuple(
                self.license(sku_id, (path,)) for sku_id, path in self.group_paths(group)
            )
        return licenses

    def license(self, sku_id: str, paths: tuple[Path, ...]) -> EffectiveLicense:
        """One SKU over the same paths is the same license for every user who holds it."""
        key = (sku_id, *map(id, paths))
        lic = self._by_paths.get(key)
        if lic is None:
            if len(paths) == 1:
                enabled = paths[0].enabled_plans
            else:
                enabled = frozenset().union(*(p.enabled_plans for p in paths))
            lic = EffectiveLicense(sku_id, paths, enabled, self._skus[sku_id].plan_ids - enabled)
            self._by_paths[key] = lic
        return lic


def effective_licenses_for_user(
    user: User, groups: Sequence[Group], skus: Mapping[str, Sku], cache: PathCache | None = None
) -> tuple[EffectiveLicense, ...]:
    """One user's effective licenses, SKUs in first-seen order (direct paths first).

    Users who hold the same direct assignments and belong to the same licensed groups share
    one result: in a real tenant most users fall into a few hundred such combinations.
    """
    cache = cache or PathCache(skus)
    direct = (
        tuple(
            (s.sku_id, s.disabled_plans)
            for s in user.states
            if s.assigned_by_group is None and s.sku_id in skus
        )
        if user.states
        else ()
    )
    # users in the same licensed groups share one tuple (`licensed_groups_by_user`)
    combination = groups if not direct and isinstance(groups, tuple) else None
    if combination is not None:
        found = cache.by_groups.get(id(combination))
        if found is not None:
            return found[1]
    key = (direct, tuple([g.id for g in groups]))
    licenses = cache.licenses.get(key)
    if licenses is None:
        licenses = cache.licenses[key] = _combine(direct, groups, skus, cache)
    if combination is not None:
        cache.by_groups[id(combination)] = (combination, licenses)
    return licenses


def _combine(
    direct: tuple[tuple[str, frozenset[str]], ...],
    groups: Sequence[Group],
    skus: Mapping[str, Sku],
    cache: PathCache,
) -> tuple[EffectiveLicense, ...]:
    if not direct:
        # the common case: no two of the groups give the same SKU, each license is one path
        licenses = tuple(chain.from_iterable(map(cache.group_licenses, groups)))
        if len({lic.sku_id for lic in licenses}) == len(licenses):
            return licenses
    by_sku: dict[str, list[Path]] = {}
    for sku_id, disabled in direct:
        by_sku.setdefault(sku_id, []).append(cache.path(DIRECT, None, sku_id, disabled))
    for group in groups:
        # like direct paths, SKUs the tenant no longer subscribes to are left out
        for sku_id, path in cache.group_paths(group):
            by_sku.setdefault(sku_id, []).append(path)
    return tuple(cache.license(sku_id, tuple(paths)) for sku_id, paths in by_sku.items())


def effective_licenses(tenant: Tenant) -> dict[str, tuple[EffectiveLicense, ...]]:
    """Every user's effective licenses, keyed by user id."""
    index = licensed_groups_by_user(tenant.groups.values())
    cache = PathCache(tenant.skus)
    return {
        user.id: effective_licenses_for_user(user, index.get(user.id, ()), tenant.skus, cache)
        for user in tenant.users.values()
    }
