"""Graph's JSON <-> the scan's typed `LicensedWorld`, and the Graph-shaped documents made from it.

The scan reads SKUs and the organization as Graph's JSON and the licensed groups typed; this
builds the `LicensedWorld` the service works on (through `GraphTranslator`, which checks the
groups' licenses against the SKUs as a snapshot would). A run keeps its world in blob storage
as `groups.json` in Graph's shapes (`skus`, `organization`, `groups` with `memberIds` and
`nestedGroupIds`, `nestedGroups`, `userCount` when counted): the form runs kept before the
world was typed, so a run resumed across an upgrade still loads. The world keeps the documents
Graph returned (`GraphDocuments`, `GroupConfig.graph_document`): `groups.json`, the
configuration snapshot (`config.json`) and a live snapshot file write those, so they hold every
field Graph returned as it returned it (the typed values' form only where no document was read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.adapters.snapshot import GraphTranslator
from shared.core.graph_values import prepaid_units_document
from shared.core.model import Group, Organization, ServicePlan, Sku, Tenant
from shared.ports.directory import JSON, GroupConfig
from shared.ports.licensed_world import GraphDocuments, LicensedWorld

CONFIG_GROUP_FIELDS = (
    "id",
    "displayName",
    "assignedLicenses",
    "membershipRule",
    "groupTypes",
    "onPremisesSyncEnabled",
    "securityEnabled",
)
CONFIG_SKU_FIELDS = ("skuId", "skuPartNumber", "prepaidUnits", "consumedUnits", "servicePlans")
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
KEPT_MEMBER_FIELDS = ("memberIds", "nestedGroupIds")
"""What `groups.json` adds to a licensed group's Graph object."""


def licensed_world(
    skus: Iterable[Any],
    organization: Any,
    configs: Sequence[GroupConfig],
    members: Mapping[str, Sequence[str]],
    nested_ids: Mapping[str, Sequence[str]],
    nested_groups: Sequence[Group] = (),
) -> LicensedWorld:
    """The world from the Graph reads: `skus` and `organization` as Graph returned them, the
    licensed groups' configs, their user and group members by group id, the nested groups."""
    translate = GraphTranslator()
    sku_documents = tuple(skus)
    sku_values = translate.skus(sku_documents)
    groups = core_groups(configs, sku_values, {})
    return LicensedWorld(
        skus=sku_values,
        organization=translate.organization(organization),
        documents=GraphDocuments(
            sku_documents, organization if isinstance(organization, Mapping) else None
        ),
        configs=tuple(configs),
        groups=groups,
        members={c.id: tuple(members.get(c.id, ())) for c in configs},
        nested_ids={c.id: tuple(nested_ids.get(c.id, ())) for c in configs},
        nested_groups=tuple(nested_groups),
    )


def core_groups(
    configs: Iterable[GroupConfig], skus: Mapping[str, Sku], members: Mapping[str, Sequence[str]]
) -> dict[str, Group]:
    """Groups' configurations as the core's groups (licenses checked against `skus`, as a
    snapshot's are), each with `members[group id]` as its user members."""
    return GraphTranslator().groups((c.to_graph() for c in configs), skus, members)


# --------------------------------------------------------------------------- groups.json


def world_document(world: LicensedWorld) -> JSON:
    """The world as a run keeps it (`groups.json`), in Graph's shapes."""
    document: JSON = {
        "skus": sku_documents(world),
        "organization": _organization(world),
        "groups": [
            dict(c.graph_form())
            | {
                "memberIds": list(world.members.get(c.id, ())),
                "nestedGroupIds": list(world.nested_ids.get(c.id, ())),
            }
            for c in world.configs
        ],
        "nestedGroups": [
            {
                "id": g.id,
                "displayName": g.name,
                "memberIds": list(g.member_user_ids),
                "nestedGroupIds": list(g.member_group_ids),
            }
            for g in world.nested_groups
        ],
    }
    if world.counted:
        document["userCount"] = world.user_count
    return document


def world_from_document(document: Mapping[str, Any]) -> LicensedWorld:
    """A kept `groups.json` (this module's form, or the raw Graph objects runs kept before)."""
    raw_groups = list(document.get("groups") or ())
    world = licensed_world(
        document.get("skus") or (),
        document.get("organization"),
        [
            GroupConfig.from_graph({k: v for k, v in g.items() if k not in KEPT_MEMBER_FIELDS})
            for g in raw_groups
        ],
        {str(g["id"]): [str(u) for u in g.get("memberIds") or ()] for g in raw_groups},
        {str(g["id"]): [str(n) for n in g.get("nestedGroupIds") or ()] for g in raw_groups},
        [
            Group(
                id=str(g["id"]),
                name=str(g.get("displayName") or g["id"]),
                member_user_ids=tuple(g.get("memberIds") or ()),
                member_group_ids=tuple(g.get("nestedGroupIds") or ()),
            )
            for g in document.get("nestedGroups") or ()
        ],
    )
    if "userCount" in document:
        count = document["userCount"]
        world = world.with_user_count(int(count) if count is not None else None)
    return world


def sku_documents(world: LicensedWorld) -> list[JSON]:
    """The world's subscribedSkus as Graph returned them (their typed form if none was read)."""
    if world.documents.skus:
        return [dict(s) for s in world.documents.skus]
    return [sku_document(s) for s in world.skus.values()]


def _organization(world: LicensedWorld) -> JSON | None:
    """The organization as Graph returned it (its typed form if none was read)."""
    if world.documents.organization is not None:
        return dict(world.documents.organization)
    return organization_document(world.organization)


def sku_document(sku: Sku) -> JSON:
    """A subscribedSku in Graph's shape (the fields the core reads)."""
    return {
        "skuId": sku.id,
        "skuPartNumber": sku.part_number,
        "capabilityStatus": sku.capability_status,
        "consumedUnits": sku.consumed,
        "prepaidUnits": prepaid_units_document(sku.prepaid),
        "servicePlans": [_plan_document(p) for p in sku.plans],
    }


def _plan_document(plan: ServicePlan) -> JSON:
    """A servicePlanInfo; `appliesTo` and `provisioningStatus` when Graph said them."""
    document: JSON = {"servicePlanId": plan.id, "servicePlanName": plan.name}
    if plan.applies_to is not None:
        document["appliesTo"] = plan.applies_to
    if plan.provisioning_status is not None:
        document["provisioningStatus"] = plan.provisioning_status
    return document


def organization_document(organization: Organization | None) -> JSON | None:
    if organization is None:
        return None
    return {
        "id": organization.id,
        "displayName": organization.display_name,
        "countryLetterCode": organization.country,
        "onPremisesSyncEnabled": organization.on_premises_sync_enabled,
        "onPremisesLastSyncDateTime": organization.on_premises_last_sync,
    }


# --------------------------------------------------------------------------- other documents


def config_document(world: LicensedWorld, taken_at: str) -> JSON:
    """The configuration snapshot (`config.json`): licensed groups (SKUs, disabled plans,
    dynamic rules) and every SKU's plans, no members."""
    return {
        "takenAt": taken_at,
        "subscribedSkus": [_pick(s, CONFIG_SKU_FIELDS) for s in sku_documents(world)],
        "groups": [_pick(c.graph_form(), CONFIG_GROUP_FIELDS) for c in world.configs],
    }


def config_tenant(
    config: Mapping[str, Any], members: Mapping[str, Sequence[str]] | None = None
) -> Tenant:
    """A configuration snapshot as the core's tenant (no users); `members`, when given, fills
    the groups' user members by id (the new-plan reach counts them)."""
    members = members or {}
    translate = GraphTranslator()
    skus = translate.skus(config.get("subscribedSkus") or ())
    user_ids = sorted({u for ids in members.values() for u in ids})
    users = translate.users(({"id": u} for u in user_ids), skus)
    return Tenant(skus, translate.groups(config.get("groups") or (), skus, members), users, None)


def snapshot_groups(world: LicensedWorld) -> list[JSON]:
    """The licensed and nested groups as a snapshot file lists them (Graph's objects), with
    `members`."""
    out = []
    for config in world.configs:
        members = [{"@odata.type": USER_TYPE, "id": u} for u in world.members.get(config.id, ())]
        members += [
            {"@odata.type": GROUP_TYPE, "id": g} for g in world.nested_ids.get(config.id, ())
        ]
        out.append(dict(config.graph_form()) | {"members": members})
    for group in world.nested_groups:
        members = [{"@odata.type": USER_TYPE, "id": u} for u in group.member_user_ids]
        members += [{"@odata.type": GROUP_TYPE, "id": g} for g in group.member_group_ids]
        out.append({"id": group.id, "displayName": group.name, "members": members})
    return out


def snapshot_head(world: LicensedWorld) -> tuple[list[JSON], list[JSON], list[JSON]]:
    """A snapshot file's `subscribedSkus`, `groups` (with members) and `organization`, in
    Graph's shapes as GET returned them."""
    organization = _organization(world)
    return (
        sku_documents(world),
        snapshot_groups(world),
        [organization] if organization else [],
    )


def _pick(document: Mapping[str, Any], fields: Sequence[str]) -> JSON:
    return {k: document.get(k) for k in fields}
