"""The permissions manifest: every permission is a real Graph app role (with its id), the sets
are what graph-facts §7 asks for, and the Graph adapter calls nothing the manifest lacks."""

from __future__ import annotations

import copy
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_permissions import (
    ALERTS,
    APP_ROLE_IDS,
    CALLS,
    PERMISSION_SETS,
    READ,
    REPROCESS,
    find_call,
    grant,
)
from tests.adapters.test_directory_contract import (
    BIG,
    EXTRA_USERS,
    TENANT,
    UNKNOWN,
    group_subscription,
)
from tests.demo_tenant import EMS_E3
from tests.graphsim.receiver import receiver

ROLES_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "graph-app-roles.csv"


def app_roles() -> dict[str, str]:
    with ROLES_CSV.open(newline="", encoding="utf-8") as fh:
        return {row["Value"]: row["Id"] for row in csv.DictReader(fh)}


def test_every_manifest_permission_is_a_graph_app_role_with_its_id() -> None:
    roles = app_roles()
    assert len(roles) > 700
    used = {c.permission for c in CALLS if c.permission}
    assert used == set(APP_ROLE_IDS)
    for name, role_id in APP_ROLE_IDS.items():
        assert roles.get(name) == role_id, name


def test_permission_sets_follow_the_least_privilege_table() -> None:
    assert PERMISSION_SETS[READ] == {
        "GroupMember.Read.All",
        "Group.Read.All",
        "User.Read.All",
        "Organization.Read.All",
        "AuditLog.Read.All",
    }
    assert PERMISSION_SETS[REPROCESS] == {"User.ReadWrite.All"}
    assert PERMISSION_SETS[ALERTS] == {"Mail.ReadBasic.All", "Mail.ReadWrite", "Mail.Send"}
    assert not any("Write" in p or p.startswith("Mail.") for p in PERMISSION_SETS[READ])
    assert not any(p.startswith("Directory.") for s in PERMISSION_SETS.values() for p in s)


def test_grant_drops_permissions_a_broader_grant_covers() -> None:
    assert grant() == [
        "AuditLog.Read.All",
        "Group.Read.All",
        "Organization.Read.All",
        "User.Read.All",
    ]
    assert "User.ReadWrite.All" in grant([READ, REPROCESS])
    mail = grant([READ, ALERTS])
    assert {"Mail.Send", "Mail.ReadWrite"} <= set(mail)
    assert "Mail.ReadBasic.All" not in mail  # Mail.ReadWrite reads the drafts too


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/groups/delta", "GroupMember.Read.All"),
        ("GET", "/groups/0f1e/members", "GroupMember.Read.All"),
        ("GET", "/v1.0/groups/{id}/membersWithLicenseErrors?$select=id", "GroupMember.Read.All"),
        ("POST", "/subscriptions", "Group.Read.All"),
        ("POST", "/users/abc/reprocessLicenseAssignment", "User.ReadWrite.All"),
        ("POST", "/users/{id}/sendMail", "Mail.Send"),
        ("POST", "/users/abc/messages", "Mail.ReadWrite"),
        ("POST", "/users/abc/messages/AAMk1/send", "Mail.Send"),
        ("GET", "/users/abc/mailFolders/drafts/messages?$top=1", "Mail.ReadBasic.All"),
        ("GET", "/subscribedSkus", "Organization.Read.All"),
        ("GET", "/users?$top=999&$select=id", "User.Read.All"),
        ("GET", "/v1.0/auditLogs/directoryAudits", "AuditLog.Read.All"),
    ],
)
def test_find_call(method: str, path: str, permission: str) -> None:
    call = find_call(method, path)
    assert call is not None
    assert call.permission == permission


def test_the_user_count_is_its_own_entry_not_a_user_by_id() -> None:
    call = find_call("GET", "/v1.0/users/$count")
    assert call is not None
    assert (call.path, call.permission) == ("/users/$count", "User.Read.All")


def test_find_call_knows_nothing_else() -> None:
    assert find_call("GET", "/users/{id}/licenseDetails") is None
    assert find_call("DELETE", "/groups/{id}") is None
    assert find_call("POST", "/users/{id}/assignLicense") is None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_graph_adapter_calls_only_manifest_endpoints_and_all_used_ones() -> None:
    """Every GraphDirectory method once against graphsim; graphsim's per-endpoint counters must
    match the manifest both ways (no unlisted call, no listed call marked used but never made)."""
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with (
        serve_in_thread(copy.deepcopy(TENANT)) as url,
        SimClient(url) as sim,
        receiver() as rec,
    ):
        directory = GraphDirectory(build_graph_client(url, static_token="t"), page_size=50)
        async with directory:
            await directory.licensed_group_configs()
            await directory.group_configs([BIG, UNKNOWN[0]])
            await directory.group_member_ids(BIG)
            rnd = await directory.group_delta([BIG, EMS_E3], None)
            await directory.group_delta([], rnd.delta_link)
            await directory.users_by_id([*EXTRA_USERS[:3], UNKNOWN[1]])
            await directory.member_of(EXTRA_USERS[:2])
            await directory.users_page(None)
            await directory.user_count()
            await directory.group_members_page(BIG, None)
            await directory.directory_audits("2020-01-01T00:00:00Z", ["Set group license"])
            sender = str(TENANT["users"][0]["userPrincipalName"])
            message = {"subject": "s", "toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}
            await directory.send_mail(sender, message)
            mime = b"To: a@b.c\r\nSubject: s\r\nMessage-ID: <m1@b.c>\r\n\r\nbody"
            draft = await directory.create_draft(sender, mime)
            assert await directory.find_draft(sender, "<m1@b.c>") == draft
            assert await directory.send_draft(sender, draft) is True
            left = await directory.create_draft(sender, mime)
            assert await directory.delete_draft(sender, left) is True
            await directory.subscribed_skus()
            await directory.organization()
            await directory.groups_with_license_errors()
            await directory.members_with_license_errors(EMS_E3)
            await directory.reprocess_license_assignment(EXTRA_USERS[0])
            request = group_subscription(rec.url, expiry, client_state="state")
            sub = await directory.create_subscription(request)
            await directory.subscriptions()
            assert await directory.subscription(sub.id) == sub
            await directory.renew_subscription(sub.id, expiry)
            await directory.reauthorize_subscription(sub.id)
            await directory.delete_subscription(sub.id)
        hit = set(sim.counters())
    unlisted = [k for k in hit if find_call(*k.partition(" ")[::2]) is None]
    assert unlisted == []
    listed = {f"{c.method} {c.path}" for c in CALLS if c.used}
    assert listed - hit == set()
