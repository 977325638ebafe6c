"""The scan's typed world and the forms it is kept in: a run's `groups.json` written before the
world was typed (raw Graph objects) still loads, the typed world's own form loads back to the
same values, and the stores' rows written in Graph's form (licensed groups, the SKU cache) load
as typed values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.adapters.world_document import (
    config_document,
    world_document,
    world_from_document,
)
from shared.fakes.tables import InMemoryTable
from shared.ports.directory import GROUP_SELECT, GroupConfig
from shared.ports.tables import json_field
from shared.service.stores import LicensedGroups, ServiceState
from shared.service.stores.licensed_groups import GROUP_PK
from tests.demo_tenant import E3_BASE, ENTERPRISEPACK
from tests.service.world import demo_snapshot

GROUP_FIELDS = GROUP_SELECT.split(",")
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


def old_groups_json() -> dict[str, Any]:
    """`groups.json` as runs kept it before: Graph's objects as read, with the member ids."""
    snapshot = demo_snapshot()
    groups = []
    for group in snapshot["groups"]:
        if not group.get("assignedLicenses"):
            continue
        members = group.get("members") or []
        groups.append(
            {f: group.get(f) for f in GROUP_FIELDS}
            | {
                "memberIds": [m["id"] for m in members if m.get("@odata.type") == USER],
                "nestedGroupIds": [m["id"] for m in members if m.get("@odata.type") == GROUP],
            }
        )
    return {
        "skus": snapshot["subscribedSkus"],
        "organization": snapshot["organization"][0],
        "groups": groups,
        "nestedGroups": [],
        "userCount": len(snapshot["users"]),
    }


def test_a_groups_json_kept_before_the_upgrade_loads_as_a_typed_world() -> None:
    old = old_groups_json()

    world = world_from_document(old)

    assert [c.id for c in world.configs] == [g["id"] for g in old["groups"]]
    assert set(world.groups) == {g["id"] for g in old["groups"]}
    base = next(g for g in old["groups"] if g["id"] == E3_BASE)
    assert world.groups[E3_BASE].name == base["displayName"]
    assert world.members[E3_BASE] == tuple(base["memberIds"])
    assert {a.sku_id for a in world.groups[E3_BASE].licenses} == {
        a["skuId"] for a in base["assignedLicenses"]
    }
    raw_sku = next(s for s in old["skus"] if s["skuId"] == ENTERPRISEPACK)
    sku = world.skus[ENTERPRISEPACK]
    assert sku.part_number == raw_sku["skuPartNumber"]
    assert sku.prepaid.enabled == raw_sku["prepaidUnits"]["enabled"]
    assert [p.id for p in sku.plans] == [p["servicePlanId"] for p in raw_sku["servicePlans"]]
    assert world.organization_name == old["organization"]["displayName"]
    assert (world.counted, world.user_count) == (True, old["userCount"])


def test_the_typed_worlds_own_form_loads_back_to_the_same_values() -> None:
    world = world_from_document(old_groups_json())

    again = world_from_document(world_document(world))

    assert again == world
    assert config_document(again, "t") == config_document(world, "t")


def test_the_configuration_snapshot_keeps_graphs_fields_of_groups_and_skus() -> None:
    old = old_groups_json()

    config = config_document(world_from_document(old), "2026-01-02T00:00:00+00:00")

    assert config["takenAt"] == "2026-01-02T00:00:00+00:00"
    for raw, written in zip(old["skus"], config["subscribedSkus"], strict=True):
        assert written == {
            k: raw.get(k)
            for k in ("skuId", "skuPartNumber", "prepaidUnits", "consumedUnits", "servicePlans")
        }
    for raw, written in zip(old["groups"], config["groups"], strict=True):
        # Every field read but the processing state (not configuration), as Graph returned
        # them: disabledPlans in its order, None kept.
        assert written == {f: raw[f] for f in GROUP_FIELDS if f != "licenseProcessingState"}
    assert any(  # the demo has both: what a typed copy would change
        a["disabledPlans"] != sorted(a["disabledPlans"])
        for g in config["groups"]
        for a in g["assignedLicenses"]
    )


def test_a_world_read_unwatched_keeps_no_user_count() -> None:
    old = old_groups_json()
    del old["userCount"]

    world = world_from_document(world_document(world_from_document(old)))

    assert (world.counted, world.user_count) == (False, None)


def test_licensed_group_rows_stored_as_graph_returned_them_load_typed() -> None:
    table = InMemoryTable("deltalinks")
    raw = next(g for g in demo_snapshot()["groups"] if g["id"] == E3_BASE)
    graph_object = {f: raw.get(f) for f in GROUP_FIELDS}  # what `save_group` stored
    table.upsert(GROUP_PK, E3_BASE, {"json": json_field(graph_object), "licensed": True})
    licensed = LicensedGroups(table)

    [config] = licensed.configs().values()

    assert config == GroupConfig.from_graph(graph_object)
    licensed.save_config(config)
    assert licensed.configs() == {E3_BASE: config}


def test_sku_cache_rows_stored_as_graph_returned_them_load_typed() -> None:
    table = InMemoryTable("servicestate")
    state = ServiceState(table)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    skus = demo_snapshot()["subscribedSkus"]
    for sku in skus:  # what the cache stored before it was typed
        table.upsert(ServiceState.SKU_PK, sku["skuId"], {"json": json_field(sku)})
    table.upsert(ServiceState.META_PK, "skus", {"refreshedAt": now})

    cached, refreshed = state.skus()

    assert set(cached) == {s["skuId"] for s in skus}
    assert refreshed == now
    state.save_skus(cached.values(), now)
    assert state.skus() == (cached, now)
