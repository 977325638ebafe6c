"""`license-guard preflight` against graphsim (`--token SECRET`, JWT tokens), a dedicated
Azurite and a loopback webhook receiver: one run where everything is ready (exit 0), and runs
with distinct faults, each named in the checklist with its fix (exit 1); bad input exits 2.

The validation handshake it imitates: graph-facts §1.4,
https://learn.microsoft.com/graph/change-notifications-delivery-webhooks
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite, AzuriteEndpoints
from devhost.provision import provision_storage
from graphsim.server import serve_in_thread
from shared.adapters.graph_permissions import APP_ROLE_IDS
from shared.bootstrap import build_services, close_services
from shared.cli.main import main
from shared.cli.preflight import run_preflight, target_from
from shared.cli.preflight_checks import FAIL, client_state_check
from shared.cli.preflight_state import running_state_checks
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS
from shared.ports.tables import SUBSCRIPTIONS
from shared.service.services import Services
from shared.service.subscriptions import (
    SUBSCRIPTION_PK,
    check_subscription_live,
    keep_subscription,
    our_subscription_ids,
)
from tests.credentials import TEST_APP_ID, TEST_TENANT_ID, MintingCredential
from tests.graphsim.conftest import make_tenant
from tests.graphsim.receiver import Receiver, receiver
from tests.loopback import QuietHandler, serving
from tests.python_run import run_module
from tests.settings_env import SCHEDULE_ENV

SECRET = "graphsim-preflight-secret-0123456789abcdef"
ALL_ROLES = [
    "Group.Read.All",
    "User.Read.All",
    "Organization.Read.All",
    "AuditLog.Read.All",
    "User.ReadWrite.All",
    "Mail.Send",
    "Mail.ReadWrite",
]
SENDER = "user0@contoso.example"  # a user of tests/graphsim/conftest.make_tenant

# One xdist worker runs the module, so its own Azurite starts once.
pytestmark = pytest.mark.xdist_group("preflight-azurite")


@pytest.fixture(scope="module")
def storage(graph_url: str) -> Iterator[AzuriteEndpoints]:
    """Its own Azurite (the checks need an account set up like Azure's), where the
    subscription keeper has made the Graph subscription, as in a deployment that is ready."""
    with Azurite() as endpoints:
        provision_storage(endpoints.connection_string)
        keep_subscription_once(graph_url, endpoints.connection_string)
        yield endpoints


def keep_subscription_once(graph_url: str, connection_string: str) -> str:
    """Run the real subscription keeper against graphsim and this storage; its subscription's
    id. graphsim makes the validation handshake with a receiver that lives just as long."""
    with receiver() as rec:
        kept = asyncio.run(with_services(graph_url, connection_string, rec.url, keep_subscription))
    # the sweep a new subscription owes: the app would take it at once; nothing runs it here
    QueueClient.from_connection_string(connection_string, GROUPS_CHANGED).clear_messages()
    return str(kept.subscription_id)


async def with_services(
    graph_url: str, connection_string: str, webhook_url: str, job: Callable[[Services], Any]
) -> Any:
    """`job(svc)` with the service's real adapters on graphsim and this storage."""
    env = {
        "GRAPH_BASE_URL": graph_url,
        "AzureWebJobsStorage": connection_string,
        "TENANT_ID": TEST_TENANT_ID,
        "CLIENT_STATE": "a-client-state-of-32-characters!",
        "NOTIFICATION_URL": webhook_url,
        "LIFECYCLE_NOTIFICATION_URL": webhook_url,
        **SCHEDULE_ENV,
    }
    svc = build_services(env, credential=MintingCredential(SECRET, claims={"roles": ALL_ROLES}))
    try:
        return await job(svc)
    finally:
        await close_services(svc)


IDENTITY = "8e881353-1735-45af-af21-ee1344582a4d"
"""The app's managed identity (its service principal's object id), granted every role but
User.ReadWrite.All, as `grant-graph-permissions.sh --enable-mail` leaves it."""
GRAPH_SP = "fea94d6d-b5bf-44d2-a887-4f72a8d74f44"


def identity_granted(*names: str) -> dict[str, Any]:
    """A service principal with these Microsoft Graph app roles, as graphsim's tenant holds it."""
    return {
        "id": IDENTITY,
        "displayName": "id-license-guard",
        "appRoleAssignments": [
            {"id": f"assignment-{n}", "appRoleId": APP_ROLE_IDS[name], "resourceId": GRAPH_SP}
            for n, name in enumerate(names)
        ],
    }


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    granted = [r for r in ALL_ROLES if r != "User.ReadWrite.All"]
    tenant = make_tenant() | {"servicePrincipals": [identity_granted(*granted)]}
    with serve_in_thread(tenant, token=SECRET) as url:
        yield url


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with receiver() as rec:
        yield rec


def settings(graph_url: str, storage: AzuriteEndpoints, webhook: Receiver) -> dict[str, str]:
    return {
        "GRAPH_BASE_URL": graph_url,
        "AzureWebJobsStorage": storage.connection_string,
        "TENANT_ID": TEST_TENANT_ID,
        "LICENSE_GUARD_MODE": "act",
        "ALERT_SENDER": SENDER,
        "CLIENT_STATE": "a-client-state-of-32-characters!",
        "NOTIFICATION_URL": f"{webhook.url}?code=function-key",
        "LIFECYCLE_NOTIFICATION_URL": f"{webhook.url}?code=function-key",
    }


def args(**overrides: Any) -> argparse.Namespace:
    return argparse.Namespace(**({"graph_base_url": None, "token": None, "mode": None} | overrides))


def preflight(env: dict[str, str], credential: MintingCredential) -> tuple[int, str]:
    out = io.StringIO()
    status = run_preflight(args(), credential=credential, env=env, out=out)
    return status, out.getvalue()


def line(output: str, name: str) -> str:
    found = [text for text in output.splitlines() if text.strip()[2:].startswith(f"{name} ")]
    assert found, f"no checklist line for {name}:\n{output}"
    return found[0]


def failed(output: str, name: str) -> str:
    """The checklist line for `name`, which must be marked failed (✗)."""
    text = line(output, name)
    assert text.lstrip().startswith("✗"), text
    return text


def passed(output: str, name: str) -> None:
    """The checklist line for `name` must be marked passed (✓)."""
    text = line(output, name)
    assert text.lstrip().startswith("✓"), text


def test_everything_ready_passes_through_the_production_credential_path(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    credential = MintingCredential(SECRET, claims={"roles": ALL_ROLES})
    status, output = preflight(settings(graph_url, storage, webhook), credential)
    assert status == 0, output
    assert f"appid {TEST_APP_ID}" in line(output, "token")
    assert f"tenant {TEST_TENANT_ID}" in line(output, "token")
    assert credential.requests
    assert set(credential.requests) == {("https://graph.microsoft.com/.default",)}
    for permission in ALL_ROLES:
        passed(output, f"Graph {permission}")
    assert "sender mailbox user0@contoso.example exists" in line(output, "Graph Mail.Send")
    assert "Drafts readable" in line(output, "Graph Mail.ReadWrite")
    passed(output, "storage container reports")
    passed(output, "storage queue reprocess-user-poison")
    passed(output, "storage table findings")
    assert "function-key" not in output  # the URL's key is never printed
    assert len(webhook.validations) == 2
    assert output.rstrip().endswith("0 failed, 0 skipped")


def test_missing_grant_missing_mailbox_and_bad_secret_fail_each_with_a_fix(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    env = settings(graph_url, storage, webhook) | {
        "ALERT_SENDER": "nobody@contoso.example",
        "CLIENT_STATE": "too-short",
    }
    roles = [r for r in ALL_ROLES if r != "User.ReadWrite.All"]
    status, output = preflight(env, MintingCredential(SECRET, claims={"roles": roles}))
    assert status == 1
    write = failed(output, "Graph User.ReadWrite.All")
    assert "NOT granted" in write
    mail = failed(output, "Graph Mail.Send")
    assert "nobody@contoso.example not found" in mail
    drafts = failed(output, "Graph Mail.ReadWrite")
    assert "ErrorInvalidUser" in drafts or "404" in drafts
    failed(output, "CLIENT_STATE")
    fixes = [text.strip() for text in output.splitlines() if text.strip().startswith("fix:")]
    assert any("--enable-reprocess" in fix for fix in fixes)
    assert any("ALERT_SENDER" in fix for fix in fixes)
    assert any("16-128" in fix for fix in fixes)
    assert "4 failed" in output


def test_a_refused_token_and_a_webhook_that_does_not_echo_fail(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    webhook.mode = "wrong-echo"
    forged = MintingCredential("another-secret-graphsim-does-not-know-0123")
    status, output = preflight(settings(graph_url, storage, webhook), forged)
    assert status == 1
    users = failed(output, "Graph User.Read.All")
    assert "Graph refused the access token" in users
    notification = failed(output, "NOTIFICATION_URL")
    assert "without the token" in notification


def test_a_webhook_that_echoes_the_token_undecoded_fails(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """Graph's token holds spaces and colons ("Validation: Testing client application
    reachability ..."), sent URL-encoded; an endpoint must decode it before echoing it
    (graph-facts §1.4: the still-encoded token fails validation). Preflight's token must need
    the decoding too, or it passes a webhook Graph then refuses."""
    webhook.mode = "raw-echo"
    status, output = preflight(settings(graph_url, storage, webhook), reader_with_all_roles())
    assert status == 1
    assert "without the token" in failed(output, "NOTIFICATION_URL")
    assert "without the token" in failed(output, "LIFECYCLE_NOTIFICATION_URL")
    sent = webhook.validations[-1]
    assert " " in sent
    assert ":" in sent


def reader_with_all_roles() -> MintingCredential:
    return MintingCredential(SECRET, claims={"roles": ALL_ROLES})


def test_missing_storage_resources_and_no_storage_at_all(graph_url: str, webhook: Receiver) -> None:
    with Azurite() as empty:
        env = settings(graph_url, empty, webhook)
        status, output = preflight(env, MintingCredential(SECRET, claims={"roles": ALL_ROLES}))
    assert status == 1
    queue = failed(output, "storage queue groups-changed")
    assert "does not exist" in queue
    assert "azd provision" in output
    env.pop("AzureWebJobsStorage")
    status, output = preflight(env, MintingCredential(SECRET, claims={"roles": ALL_ROLES}))
    assert status == 0, output
    assert "AzureWebJobsStorage is not set: not checked" in line(output, "storage")


def test_poisoned_messages_fail_their_queue_with_the_runbook(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """Messages that failed every attempt: the deployment is not working, not "ready"."""
    poison = QueueClient.from_connection_string(storage.connection_string, "sync-completed-poison")
    poison.send_message("eyJ0eXBlIjogIlN5bmNDb21wbGV0ZWQifQ==")
    poison.send_message("bm90IGpzb24=")
    try:
        credential = MintingCredential(SECRET, claims={"roles": ALL_ROLES})
        status, output = preflight(settings(graph_url, storage, webhook), credential)
    finally:
        poison.clear_messages()
    assert status == 1
    poisoned = failed(output, "storage queue sync-completed-poison")
    assert "2 message(s) failed every attempt" in poisoned
    assert "Poison queues" in output  # the fix names the runbook
    passed(output, "storage queue sync-completed")
    passed(output, "storage queue reprocess-user-poison")


def test_the_command_line_with_a_token_graphsim_issued(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    issued = httpx.post(
        graph_url.replace("/v1.0", "/_sim/token"),
        json={"claims": {"appid": "cli-app", "roles": ALL_ROLES}},
        timeout=10,
    ).json()["access_token"]
    env = dict(os.environ) | settings(graph_url, storage, webhook)
    env["GRAPH_STATIC_TOKEN"] = issued
    done = run_module("shared", "preflight", "--mode", "observe", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mode observe, permission sets: read, alerts" in done.stdout
    assert "appid cli-app" in done.stdout
    assert "Graph User.ReadWrite.All" not in done.stdout  # observe mode needs no write grant


def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["preflight", "--graph-base-url", "https://graph.contoso.example/v1.0"])
    assert status == 2
    err = capsys.readouterr().err
    assert "is not a Microsoft Graph host" in err
    assert "Traceback" not in err


def test_a_read_grant_missing_fails_its_probe_with_graphs_403(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    roles = [r for r in ALL_ROLES if r != "AuditLog.Read.All"]
    status, output = preflight(
        settings(graph_url, storage, webhook), MintingCredential(SECRET, claims={"roles": roles})
    )
    assert status == 1
    audit = failed(output, "Graph AuditLog.Read.All")
    assert "403 Authorization_RequestDenied" in audit
    passed(output, "Graph User.Read.All")
    assert "1 failed" in output


def test_a_token_for_another_tenant_is_named(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    env = settings(graph_url, storage, webhook) | {
        "TENANT_ID": "00000000-0000-0000-0000-000000000001"
    }
    status, output = preflight(env, MintingCredential(SECRET, claims={"roles": ALL_ROLES}))
    assert status == 1
    tenant = failed(output, "tenant")
    assert f"the token is for tenant {TEST_TENANT_ID}" in tenant


def test_directory_read_all_does_not_pass_for_the_reprocess_write(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """Directory.Read.All covers the reads, never a write: act mode still lacks the grant
    reprocessLicenseAssignment needs (its calls would answer 403)."""
    roles = [r for r in ALL_ROLES if r != "User.ReadWrite.All"] + ["Directory.Read.All"]
    status, output = preflight(
        settings(graph_url, storage, webhook), MintingCredential(SECRET, claims={"roles": roles})
    )
    assert status == 1
    assert "NOT granted" in failed(output, "Graph User.ReadWrite.All")
    passed(output, "Graph User.Read.All")


def test_a_key_vault_reference_is_no_client_state() -> None:
    """App settings read from Azure (or a reference the platform could not resolve) hold the
    reference text: no clientState the webhook would accept."""
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-lg.vault.azure.net/secrets/client-state/)"

    check = client_state_check(reference)

    assert check.mark == FAIL
    assert "Key Vault reference" in check.detail


def test_an_app_token_without_a_roles_claim_does_not_pass_mail_send(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """An app-only token carries `roles` only when app roles were granted (claims are present
    only if a value exists: learn.microsoft.com/entra/identity-platform/
    access-token-claims-reference). The sender mailbox existing proves nothing about Mail.Send:
    without roles it is no Entra app role, never passed (Exchange RBAC for Applications may
    grant it, which no token shows: tests/cli/test_preflight_exchange_rbac.py)."""
    no_roles = MintingCredential(SECRET, claims={"roles": None})  # graphsim: unrestricted
    status, output = preflight(settings(graph_url, storage, webhook), no_roles)
    assert status == 1
    assert line(output, "Graph Mail.Send").lstrip().startswith("-")
    assert "NOT granted" in failed(output, "Graph User.ReadWrite.All")
    passed(output, "Graph User.Read.All")  # its probe answered 200


def test_a_users_token_leaves_mail_send_unproven(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """A delegated token (`scp`, no `roles`: an admin's `az login`) says nothing about what the
    app's identity was granted: Mail.Send is not checked, never passed."""
    user = MintingCredential(SECRET, claims={"roles": None, "scp": "Directory.Read.All"})
    _, output = preflight(settings(graph_url, storage, webhook), user)
    text = line(output, "Graph Mail.Send")
    assert text.lstrip().startswith("-"), text
    assert "not proven" in text


ADMIN = {"roles": None, "scp": "Directory.Read.All"}
"""An admin's `az login` token: delegated scopes, no app roles (graphsim: unrestricted)."""


SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GROUP_SCOPE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-license-guard"
ACCOUNT_SCOPE = f"{GROUP_SCOPE}/providers/Microsoft.Storage/storageAccounts/stlicenseguard"
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"


class FakeArm:
    """Azure Resource Manager's "Role Assignments - List For Scope" for the identity, as
    learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope shapes it."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.held = {BLOB_OWNER: ACCOUNT_SCOPE, QUEUE_CONTRIBUTOR: GROUP_SCOPE}
        self.held[TABLE_CONTRIBUTOR] = ACCOUNT_SCOPE

    def answer(self) -> dict[str, Any]:
        return {
            "value": [
                {
                    "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{n}",
                    "type": "Microsoft.Authorization/roleAssignments",
                    "properties": {
                        "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/"
                        f"Microsoft.Authorization/roleDefinitions/{role}",
                        "principalId": IDENTITY,
                        "principalType": "ServicePrincipal",
                        "scope": scope,
                    },
                }
                for n, (role, scope) in enumerate(self.held.items())
            ]
        }


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    fake = FakeArm()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server calls it by this name
            parts = urlsplit(self.path)
            fake.requests.append((parts.path, parse_qs(parts.query)))
            self.send_json(200, fake.answer())

    with serving(Handler) as url:
        fake.url = url
        yield fake


def azd_values(graph_url: str, mode: str = "act", arm: FakeArm | None = None) -> dict[str, str]:
    """What `azd env get-values` holds: Bicep outputs and the parameters set with `azd env set`
    (no CLIENT_STATE, storage settings or webhook URLs: those are the app's, in Key Vault)."""
    values = {
        "GRAPH_BASE_URL": graph_url,
        "AZURE_IDENTITY_PRINCIPAL_ID": IDENTITY,
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg-license-guard",
        "AZURE_STORAGE_ACCOUNT_NAME": "stlicenseguard",
        "LICENSE_GUARD_MODE": mode,
        "ALERT_SENDER": SENDER,
    }
    return values | ({"ARM_BASE_URL": arm.url} if arm else {})


def admin_preflight(env: dict[str, str], principal: str, claims: dict[str, Any]) -> tuple[int, str]:
    out = io.StringIO()
    credential = MintingCredential(SECRET, claims=claims)
    status = run_preflight(args(principal_id=principal), credential=credential, env=env, out=out)
    return status, out.getvalue()


def test_an_admin_checks_the_identitys_grants_from_the_azd_values(
    graph_url: str, arm: FakeArm
) -> None:
    """README Deploy step 3: the admin's sign-in reads what the identity was granted (Graph app
    roles, storage data roles); the Key Vault secrets it was not given are skipped, saying why."""
    status, output = admin_preflight(azd_values(graph_url, "observe", arm), IDENTITY, ADMIN)

    assert status == 0, output
    assert "Group.Read.All" in line(output, "identity")
    for permission in ("Group.Read.All", "User.Read.All", "Mail.Send", "Mail.ReadWrite"):
        assert "granted to the identity" in line(output, f"Graph {permission}")
        passed(output, f"Graph {permission}")
    for role in ("Blob Data Owner", "Queue Data Contributor", "Table Data Contributor"):
        assert "held by the identity on stlicenseguard" in line(output, f"storage Storage {role}")
    [(path, query)] = arm.requests
    assert path == f"{ACCOUNT_SCOPE}/providers/Microsoft.Authorization/roleAssignments"
    assert query == {"api-version": ["2022-04-01"], "$filter": [f"principalId eq '{IDENTITY}'"]}
    for name in ("CLIENT_STATE", "NOTIFICATION_URL", "LIFECYCLE_NOTIFICATION_URL"):
        assert line(output, name).lstrip().startswith("-"), name
        assert "Key Vault secret" in line(output, name)
    assert output.rstrip().endswith("0 failed, 3 skipped")


def test_a_storage_role_held_only_on_one_table_does_not_count(graph_url: str, arm: FakeArm) -> None:
    """ARM lists the principal's assignments at, above and below the account: only those at
    the account or above cover every queue, table and container the app uses."""
    arm.held[TABLE_CONTRIBUTOR] = f"{ACCOUNT_SCOPE}/tableServices/default/tables/findings"
    credential = MintingCredential(SECRET, claims=ADMIN)
    out = io.StringIO()
    env = azd_values(graph_url, "observe", arm)
    status = run_preflight(args(principal_id=IDENTITY), credential=credential, env=env, out=out)
    output = out.getvalue()

    assert status == 1
    passed(output, "storage Storage Queue Data Contributor")  # held on the resource group
    table = failed(output, "storage Storage Table Data Contributor")
    assert f"NOT held by the identity {IDENTITY}" in table
    assert "azd provision" in output
    assert (f"{arm.url}/.default",) in credential.requests  # a token for ARM, not Graph


def test_without_the_accounts_azd_values_storage_roles_are_skipped(graph_url: str) -> None:
    env = azd_values(graph_url, "observe")
    del env["AZURE_SUBSCRIPTION_ID"]
    status, output = admin_preflight(env, IDENTITY, ADMIN)

    assert status == 0, output
    assert "az role assignment list" in line(output, "storage roles")


def test_the_key_vault_values_an_admin_exports_are_checked_too(
    graph_url: str, webhook: Receiver, arm: FakeArm
) -> None:
    """With CLIENT_STATE and the webhook URLs exported from Key Vault (README step 3), the
    secret's length and Graph's validation handshake are checked as for the app."""
    exported = {
        "CLIENT_STATE": "a-client-state-of-32-characters!",
        "NOTIFICATION_URL": f"{webhook.url}?code=function-key",
        "LIFECYCLE_NOTIFICATION_URL": f"{webhook.url}?code=function-key",
    }
    env = azd_values(graph_url, "observe", arm) | exported
    status, output = admin_preflight(env, IDENTITY, ADMIN)

    assert status == 0, output
    for name in exported:
        passed(output, name)
    assert len(webhook.validations) == 2
    assert output.rstrip().endswith("0 failed, 0 skipped")


def test_an_admin_sees_the_identity_lacks_the_act_modes_write(graph_url: str, arm: FakeArm) -> None:
    status, output = admin_preflight(azd_values(graph_url, "act", arm), IDENTITY, ADMIN)

    assert status == 1
    assert f"NOT granted to the identity {IDENTITY}" in failed(output, "Graph User.ReadWrite.All")
    assert "--enable-reprocess" in output
    assert "1 failed" in output


def test_an_unknown_identity_or_a_sign_in_that_cannot_read_it_fails_with_the_fix(
    graph_url: str,
) -> None:
    unknown = "00000000-0000-0000-0000-0000000000ff"
    status, output = admin_preflight(azd_values(graph_url), unknown, ADMIN)
    assert status == 1
    assert f"no service principal {unknown}" in failed(output, "identity")
    assert "AZURE_IDENTITY_PRINCIPAL_ID" in output

    status, output = admin_preflight(azd_values(graph_url), IDENTITY, {"roles": ["User.Read.All"]})
    assert status == 1
    assert "403" in failed(output, "identity")
    assert "Global Reader" in output


def test_principal_id_must_be_a_guid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", "--principal-id", "id-license-guard"]) == 2
    assert "--principal-id: 'id-license-guard' is not a GUID" in capsys.readouterr().err


# --- the running service: the keeper's subscription and the work queues' backlog -------------


def test_the_kept_subscription_and_an_idle_backlog_pass(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    status, output = preflight(settings(graph_url, storage, webhook), ready())

    assert status == 0, output
    assert re.search(r"subscription \S+ expires in 2[89] day\(s\)", line(output, "subscription"))
    passed(output, "subscription")
    assert "0 message(s) waiting on 5 work queue(s)" in line(output, "queue backlog")
    passed(output, "queue backlog")


def ready() -> MintingCredential:
    return MintingCredential(SECRET, claims={"roles": ALL_ROLES})


def test_a_subscription_none_recorded_or_about_to_expire_fails_with_the_keeper(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """The keeper's record (table `subscriptions`): none means no notifications arrive; one
    expiring within 24 h means the keeper, renewing 48 h ahead every 6 h, has stopped."""
    table = TableClient.from_connection_string(storage.connection_string, SUBSCRIPTIONS)
    kept = list(table.query_entities(f"PartitionKey eq '{SUBSCRIPTION_PK}'"))
    assert kept  # the storage fixture's keeper run
    env = settings(graph_url, storage, webhook)
    try:
        soon = datetime.now(UTC) + timedelta(hours=10, minutes=5)
        for row in kept:
            table.upsert_entity({**row, "expiration": soon.strftime("%Y-%m-%dT%H:%M:%SZ")})
        status, output = preflight(env, ready())
        assert status == 1
        expiring = failed(output, "subscription")
        assert "expires in 10 h: the keeper renews 48 h ahead and has not" in expiring
        assert "subscription_keeper" in output  # the fix

        for row in kept:
            table.delete_entity(row["PartitionKey"], row["RowKey"])
        status, output = preflight(env, ready())
        assert status == 1
        assert "none recorded" in failed(output, "subscription")
    finally:
        for row in kept:
            table.upsert_entity(row)
    status, output = preflight(env, ready())
    assert status == 0, output


def test_a_subscription_graph_no_longer_has_fails(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    """The dead-man switch's last look at Graph (`servicestate`): the keeper's record still
    names a subscription Graph deleted."""

    async def delete_it_and_look(svc: Services) -> bool | None:
        for subscription_id in our_subscription_ids(svc.tables.subscriptions):
            await svc.directory.delete_subscription(subscription_id)
        return await check_subscription_live(svc)

    conn = storage.connection_string
    try:
        assert asyncio.run(with_services(graph_url, conn, webhook.url, delete_it_and_look)) is False
        status, output = preflight(settings(graph_url, storage, webhook), ready())
        assert status == 1
        assert "no longer exists in Graph" in failed(output, "subscription")
    finally:
        # A new one, as the keeper's next run makes: preflight passes at once, not only after
        # the dead-man switch's next look (its verdict named the deleted one).
        keep_subscription_once(graph_url, conn)
    status, output = preflight(settings(graph_url, storage, webhook), ready())
    assert status == 0, output
    assert "Graph had it live at" in line(output, "subscription")


def test_a_backlog_past_its_limits_fails_with_the_count_and_the_age(
    graph_url: str, storage: AzuriteEndpoints, webhook: Receiver
) -> None:
    queue = QueueClient.from_connection_string(storage.connection_string, RECOMPUTE_USERS)
    for n in range(3):
        queue.send_message(f"bm90IGpzb24{n}")  # never received: the peek only reads
    env = settings(graph_url, storage, webhook)
    try:
        status, output = run_with(env, max_queue_messages=2)
        assert status == 1
        backlog = failed(output, "queue backlog")
        assert f"{RECOMPUTE_USERS}: 3 waiting, the oldest 0 min" in backlog
        assert "limits 2 messages, 60 min" in backlog
        status, output = run_with(env, max_queue_messages=3)
        assert status == 0, output
        assert f"3 message(s) waiting on 5 work queue(s), the oldest 0 min ({RECOMPUTE_USERS})" in (
            line(output, "queue backlog")
        )

        time.sleep(2.1)  # the service stamps a message's insertion to the second
        target = replace(
            target_from(env, args(max_queue_age=1)), max_queue_age=timedelta(seconds=2)
        )
        [_, backlog_line] = running_state_checks(target)
        assert backlog_line.mark == FAIL
        assert f"{RECOMPUTE_USERS}: 3 waiting, the oldest 0 min" in backlog_line.detail
    finally:
        queue.clear_messages()


def run_with(env: dict[str, str], **limits: int) -> tuple[int, str]:
    out = io.StringIO()
    status = run_preflight(args(**limits), credential=ready(), env=env, out=out)
    return status, out.getvalue()


@pytest.mark.parametrize("flag", ["--max-queue-age", "--max-queue-messages"])
def test_a_backlog_limit_below_1_is_bad_input(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["preflight", flag, "0"])
    assert status == 2
    assert f"{flag} must be at least 1" in capsys.readouterr().err
