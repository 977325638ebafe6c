"""Preflight when alert mail is authorised the recommended way: Exchange Online RBAC for
Applications ("Application Mail.ReadWrite" / "Application Mail.Send" scoped to the sender
mailbox), with NO Entra `Mail.*` app role (docs/operations.md "Enable alert mail": the Entra
grants add up with Exchange's and would undo the scoping). Such grants are "independent of the
unscoped grants in Microsoft Entra ID" (learn.microsoft.com/graph/auth-limit-mailbox-access):
they are neither app role assignments nor in the token's `roles` claim, so preflight cannot see
them. It must not fail that setup, nor tell the admin to run `--enable-mail`.

Against graphsim: its tenant's service principal for the admin's view; for the app's own view
the checks run with the app's token roles, graphsim's static token standing in for Exchange
answering the Drafts read as the scoped role allows (as tests/cli/test_preflight_sender.py)."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import Iterator

import pytest

from graphsim.server import serve_in_thread
from shared.adapters.graph_auth import graph_endpoint
from shared.adapters.graph_permissions import APP_ROLE_IDS
from shared.bootstrap import graph_probe
from shared.cli.preflight import run_preflight
from shared.cli.preflight_checks import FAIL, PASS, SKIP, Check, Target, graph_checks
from tests.credentials import MintingCredential
from tests.graphsim.conftest import make_tenant

SECRET = "graphsim-exchange-rbac-secret-0123456789ab"
SENDER = "user0@contoso.example"  # a user of tests/graphsim/conftest.make_tenant
IDENTITY = "5a0e8a52-3c1c-4f7e-9a57-3a1f4f1d2b10"
READ_ROLES = ("Group.Read.All", "User.Read.All", "Organization.Read.All", "AuditLog.Read.All")
ADMIN = {"roles": None, "scp": "Directory.Read.All"}
"""An admin's `az login` token: delegated scopes, no app roles (graphsim: unrestricted)."""


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    identity = {
        "id": IDENTITY,
        "displayName": "id-license-guard",
        "appRoleAssignments": [
            {"id": f"a-{n}", "appRoleId": APP_ROLE_IDS[name], "resourceId": "graph-sp"}
            for n, name in enumerate(READ_ROLES)
        ],
    }
    tenant = make_tenant() | {"servicePrincipals": [identity]}
    with serve_in_thread(tenant, token=SECRET) as url:
        yield url


def admin_preflight(graph_url: str) -> tuple[int, str]:
    env = {"GRAPH_BASE_URL": graph_url, "LICENSE_GUARD_MODE": "observe", "ALERT_SENDER": SENDER}
    args = argparse.Namespace(graph_base_url=None, token=None, mode=None, principal_id=IDENTITY)
    out = io.StringIO()
    credential = MintingCredential(SECRET, claims=ADMIN)
    status = run_preflight(args, credential=credential, env=env, out=out)
    return status, out.getvalue()


def mail_line(output: str, permission: str) -> str:
    found = [t for t in output.splitlines() if t.strip()[2:].startswith(f"Graph {permission} ")]
    assert found, output
    return found[0]


def test_an_admin_is_not_told_to_grant_the_entra_mail_roles_exchange_rbac_replaces(
    graph_url: str,
) -> None:
    status, output = admin_preflight(graph_url)

    assert status == 0, output
    for permission in ("Mail.Send", "Mail.ReadWrite"):
        text = mail_line(output, permission)
        assert text.lstrip().startswith(SKIP), text
        assert "RBAC for Applications" in text
        assert "Test-ServicePrincipalAuthorization" in text
    fixes = [text for text in output.splitlines() if text.strip().startswith("fix:")]
    assert not any("--enable-mail" in fix for fix in fixes), output


def app_checks(graph_url: str, roles: list[str]) -> dict[str, Check]:
    target = Target(
        endpoint=graph_endpoint(graph_url),
        static_token=SECRET,
        mode="observe",
        tenant_id=None,
        alert_sender=SENDER,
        storage=None,
        storage_problem=None,
        client_state=None,
        notification_urls={},
    )

    async def run() -> list[Check]:
        probe = graph_probe(graph_url, static_token=SECRET, credential=None)
        try:
            return await graph_checks(target, probe, roles, app_only=True)
        finally:
            await probe.aclose()

    return {c.name: c for c in asyncio.run(run())}


def test_the_apps_token_without_entra_mail_roles_does_not_fail_the_mail_lines(
    graph_url: str,
) -> None:
    checks = app_checks(graph_url, list(READ_ROLES))

    send, drafts = checks["Graph Mail.Send"], checks["Graph Mail.ReadWrite"]
    for check in (send, drafts):
        assert check.mark == SKIP, check
        assert "RBAC for Applications" in check.detail
    assert "Drafts readable" in drafts.detail  # what the harmless read did prove
    assert checks["Graph User.Read.All"].mark == PASS


def test_entra_mail_roles_in_the_token_still_pass(graph_url: str) -> None:
    checks = app_checks(graph_url, [*READ_ROLES, "Mail.Send", "Mail.ReadWrite"])

    assert checks["Graph Mail.Send"].mark == PASS
    assert checks["Graph Mail.ReadWrite"].mark == PASS
    assert all(c.mark != FAIL for c in checks.values())
