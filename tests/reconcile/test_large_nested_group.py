"""A nested group of thousands of users: its NestedGroupMember finding fits one ledger row.

An Azure Table string holds 32,768 characters (the in-memory table enforces it like Azurite:
`shared.ports.tables.check_fields`), about 840 user ids as JSON; a nested group can hold 100k.
The row keeps the true count (`userCount`) and a sample of ids (`userIds`); alerts name some
and count the rest; the scan's evaluation.json carries every id.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.core.findings import INFO, NESTED_GROUP_MEMBER, Finding
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import FINDINGS, MAX_STRING_CHARS, json_field
from shared.render.mail import MAX_NAMED_USERS
from shared.service.alerts.digest import run_digest
from shared.service.alerts.ledger import ledger_row
from shared.service.stores import STORED_USER_IDS, FindingsLedger
from tests.alerts.mail import html, mails
from tests.alerts.world import RECIPIENT, SENDER, baseline, prime
from tests.demo_tenant import E3_BASE, SALES_TEAM
from tests.reconcile.conftest import Nightly, SmallPages
from tests.service.world import build_world, demo_snapshot

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NESTED_USERS = 1_500
"""Over the 32K limit as JSON ids (1,500 x 39 characters), small enough for a quick test."""


def user_ids(n: int) -> list[str]:
    return sorted(str(uuid.uuid5(uuid.NAMESPACE_OID, f"nested-{i}")) for i in range(n))


def nested_finding(users: list[str]) -> Finding:
    return Finding(
        code=NESTED_GROUP_MEMBER,
        severity=INFO,
        subject=f"group:{E3_BASE}",
        sku_id=None,
        group_id=E3_BASE,
        part=SALES_TEAM,
        message=f"{len(users)} user(s) in 'Sales_Team' get nothing through it.",
        remedy="Add those users directly.",
        user_ids=tuple(users),
    )


def test_a_finding_about_100k_users_fits_one_row_with_its_count_and_a_sample() -> None:
    users = user_ids(100_000)
    assert len(json_field(users)) > MAX_STRING_CHARS  # what used to fail
    table = InMemoryTable(FINDINGS)

    FindingsLedger(table).reconcile(
        f"group:{E3_BASE}", [nested_finding(users)], now=NOW, run_id="r"
    )

    [entity] = list(table.query_all())
    assert entity.fields["userCount"] == 100_000
    assert json.loads(str(entity.fields["userIds"])) == users[:STORED_USER_IDS]
    row = ledger_row(entity)
    assert row.user_ids == tuple(users[:STORED_USER_IDS])
    assert row.user_total == 100_000


def test_a_row_written_before_user_count_existed_reads_all_its_ids() -> None:
    table = InMemoryTable(FINDINGS)
    users = user_ids(3)
    finding = nested_finding(users)
    table.upsert(
        f"group:{E3_BASE}",
        finding.key,
        {
            "key": finding.key,
            "code": finding.code,
            "severity": finding.severity,
            "groupId": E3_BASE,
            "message": finding.message,
            "remedy": finding.remedy,
            "userIds": json_field(users),
            "firstSeen": NOW,
            "lastSeen": NOW,
            "runId": "old",
        },
    )

    [entity] = list(table.query_all())
    row = ledger_row(entity)

    assert row.user_ids == tuple(users)
    assert row.user_count is None
    assert row.user_total == 3
    assert FindingsLedger(table).open_findings(f"group:{E3_BASE}").keys() == {finding.key}


def large_nested_tenant() -> Nightly:
    """The demo tenant (Sales_Team nested in E3 Base) with NESTED_USERS more users in
    Sales_Team, alerts on."""
    snapshot = demo_snapshot()
    [sales] = [g for g in snapshot["groups"] if g["id"] == SALES_TEAM]
    sales["members"] += [
        {"@odata.type": "#microsoft.graph.user", "id": u} for u in user_ids(NESTED_USERS)
    ]
    world = build_world(snapshot, fake=SmallPages, ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    return Nightly(world)


async def test_the_nightly_records_a_nested_group_of_thousands_and_alerts_count_them() -> None:
    nightly = large_nested_tenant()
    await baseline(nightly.world)

    result = await nightly.run()

    assert result.status == "done"
    [nested] = [
        e.fields
        for e in nightly.world.svc.tables.findings.query_all()
        if e.fields.get("code") == NESTED_GROUP_MEMBER and not e.fields.get("resolvedAt")
    ]
    total = NESTED_USERS + 1  # the demo's one Sales_Team user is not in E3 Base either
    assert nested["userCount"] == total
    assert len(json.loads(str(nested["userIds"]))) == STORED_USER_IDS
    assert f"{total} user(s) in 'Sales_Team' get nothing" in str(nested["message"])

    [evaluation] = [n for n in result.report_blobs if n.endswith("evaluation.json")]
    data = nightly.blobs.get(evaluation)
    assert data is not None
    found = [f for g in json.loads(data)["groups"] for f in g["findings"]]
    assert [len(f["userIds"]) for f in found if f["code"] == NESTED_GROUP_MEMBER] == [total]

    outcome = await run_digest(nightly.world.svc)
    assert outcome.weekly is not None
    assert outcome.weekly.accepted
    [weekly] = [m for m in mails(nightly.world) if "weekly summary" in m["subject"]]
    assert f"and {total - MAX_NAMED_USERS} more" in html(weekly)
