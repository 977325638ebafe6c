"""The Graph translator builds the same core values as a snapshot document would: the
service's reads (a page of users, the groups they are in) go through it instead."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from shared.adapters.snapshot import GraphTranslator, SnapshotError, parse_snapshot
from shared.core.model import Tenant
from tests.demo_tenant import DEMO

USER = "#microsoft.graph.user"


def _demo() -> dict:
    return json.loads(DEMO.read_text(encoding="utf-8"))


def test_the_translator_and_the_snapshot_parser_agree_on_the_demo_tenant() -> None:
    document = _demo()
    expected = parse_snapshot(copy.deepcopy(document)).tenant
    read = {u["id"] for u in document["users"]}  # a soft-deleted member is no user read
    members = {
        g["id"]: [
            m["id"]
            for m in g.get("members") or ()
            if m.get("@odata.type") == USER and m["id"] in read
        ]
        for g in document["groups"]
    }
    translate = GraphTranslator()
    skus = translate.skus(document["subscribedSkus"])
    users = translate.users(document["users"], skus)
    groups = translate.groups(document["groups"], skus, members)
    tenant = Tenant(skus, groups, users, translate.organization(document["organization"]))

    assert tenant.skus == expected.skus
    assert tenant.users == expected.users
    assert tenant.organization == expected.organization
    # Group members come from the caller (user ids only): nested groups are the scan's.
    assert groups == {g.id: replace(g, member_group_ids=()) for g in expected.groups.values()}


def test_bad_graph_objects_fail_as_a_snapshot_would() -> None:
    users = _demo()["users"][:1]
    del users[0]["id"]
    with pytest.raises(SnapshotError, match=r"users\[0\]: missing required field 'id'"):
        GraphTranslator().users(users, {})


def test_a_group_still_assigning_a_sku_gone_from_subscribed_skus_is_read() -> None:
    # Graph keeps the group's license when the subscription is gone: one such group must not
    # fail every read of the service (the core assigns nothing from it)
    document = _demo()
    gone = {"skuId": "00000000-0000-0000-0000-000000000001", "disabledPlans": []}
    document["groups"][0]["assignedLicenses"].append(gone)
    translate = GraphTranslator()
    skus = translate.skus(document["subscribedSkus"])

    groups = translate.groups(document["groups"][:1], skus, {})

    (group,) = groups.values()
    assert [lic.sku_id for lic in group.licenses][-1] == gone["skuId"]
