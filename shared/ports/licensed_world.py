"""`LicensedWorld`: the tenant's licensed world as one scan read it, typed.

The nightly scan, its dry run, the live reports and the admin's reprocess read the subscribed
SKUs, the organization, the licensed groups with their members and the groups nested in them
once, then evaluate every page of users against it. What they read crosses into the service
layer as these values (the core's model and `GroupConfig`), never as Graph's JSON: the
adapters translate (`shared.adapters.world_document` builds a world from the Graph reads and
keeps it with a run as `groups.json`). The documents Graph returned ride along, unread by the
service, for the exports that write Graph's own shapes (`GraphDocuments`; the groups' are on
their `GroupConfig.graph_document`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.core.model import Group, Organization, Sku, Tenant
from shared.ports.directory import GroupConfig


@dataclass(frozen=True, slots=True)
class GraphDocuments:
    """The subscribed SKUs and the organization as Graph returned them (every field the read
    selected): what a live snapshot file and `config.json` write, so nothing Graph said is
    dropped by the typed values, which keep only what the service decides on."""

    skus: tuple[Mapping[str, Any], ...] = ()
    organization: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LicensedWorld:
    """SKUs, organization, licensed groups (configuration, core value, members) and the groups
    nested in them, as a scan read them."""

    skus: Mapping[str, Sku]
    organization: Organization | None
    configs: tuple[GroupConfig, ...]
    """The licensed groups' configuration, in the order Graph listed them."""
    groups: Mapping[str, Group]
    """The same groups as the core's values (licenses checked against `skus`), no members."""
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Licensed group id -> its direct user members."""
    nested_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Licensed group id -> its group members (nested groups, which license nobody)."""
    nested_groups: tuple[Group, ...] = ()
    """The groups nested (at any depth) in licensed groups, with their members."""
    user_count: int | None = None
    """The tenant's user count, when `counted` (None: Graph would not say)."""
    counted: bool = False
    """Whether the scan asked for the user count (it does when someone watches progress)."""
    documents: GraphDocuments = field(default_factory=GraphDocuments, compare=False, repr=False)
    """Graph's own SKU and organization documents behind `skus` and `organization`, for
    export only."""

    @property
    def organization_name(self) -> str:
        return self.organization.display_name if self.organization else ""

    def group_names(self) -> dict[str, str]:
        """Licensed group id -> display name (the id when it has none)."""
        return {gid: group.name for gid, group in self.groups.items()}

    def config_tenant(self) -> Tenant:
        """The SKUs and licensed groups as the core's tenant (no users, no members)."""
        return Tenant(self.skus, self.groups, {}, None)

    def groups_with_members(self, members: Mapping[str, Sequence[str]]) -> dict[str, Group]:
        """The licensed groups, each with `members[group id]` as its user members."""
        return {
            gid: replace(group, member_user_ids=tuple(members.get(gid, ())))
            for gid, group in self.groups.items()
        }

    def with_user_count(self, user_count: int | None) -> LicensedWorld:
        return replace(self, user_count=user_count, counted=True)
