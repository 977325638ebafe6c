"""What the app's identity was granted, read by an admin: `license-guard preflight --principal-id`.

An admin's own sign-in (`az login`) cannot show what the app's managed identity may do: its
token carries the admin's scopes, not the identity's app roles. So with `--principal-id` (the
identity's object id, `azd env get-value AZURE_IDENTITY_PRINCIPAL_ID`) preflight reads the app
roles granted to the identity's service principal instead
(`GET /servicePrincipals/{id}/appRoleAssignments`: learn.microsoft.com/graph/api/
serviceprincipal-list-approleassignments; Application.Read.All or Directory.Read.All, which
Global Reader has) and checks each Graph permission the mode needs against them. App role ids
are Microsoft Graph's own (`shared/data/graph-app-roles.csv`), unique GUIDs, so an assignment is
matched by its `appRoleId`. Granted roles reach the identity's tokens only after a while; the
list shows them at once (give or take replication).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.adapters.arm_roles import role_definitions_covering
from shared.adapters.graph_permissions import grant, has_role
from shared.cli.permissions import csv_role_ids
from shared.cli.preflight_checks import (
    FAIL,
    PASS,
    SKIP,
    Check,
    Probe,
    Target,
    exchange_scoped,
    grant_fix,
)
from shared.ports.directory import DirectoryError


async def identity_grant_checks(target: Target, principal_id: str, probe: Probe) -> list[Check]:
    """One check per permission the mode needs, against the identity's app role assignments."""
    path = f"/servicePrincipals/{quote(principal_id, safe='')}/appRoleAssignments"
    try:
        # one page: Graph's default page holds far more than the few roles an identity has
        body = await probe.read(f"{path}?$select=appRoleId")
    except DirectoryError as exc:
        if exc.status == 404:
            return [
                Check(
                    FAIL,
                    "identity",
                    f"no service principal {principal_id} in this tenant",
                    "pass the managed identity's principal (object) id: "
                    "azd env get-value AZURE_IDENTITY_PRINCIPAL_ID",
                )
            ]
        return [
            Check(
                FAIL,
                "identity",
                f"GET {path}: {exc}",
                "sign in (az login) as someone who can read enterprise applications "
                "(Global Reader is enough)",
            )
        ]
    names_by_id = {role_id.lower(): name for name, role_id in csv_role_ids().items()}
    granted = sorted(
        {
            names_by_id.get(str(item.get("appRoleId") or "").lower(), str(item.get("appRoleId")))
            for item in body.get("value") or []
            if isinstance(item, dict)
        }
    )
    checks = [
        Check(
            PASS,
            "identity",
            f"service principal {principal_id}: app roles {', '.join(granted) or 'none'}",
        )
    ]
    for name in grant(target.permission_sets):
        label = f"Graph {name}"
        if has_role(granted, name):
            scope = "; its scope to the sender mailbox is Exchange's" * name.startswith("Mail.")
            checks.append(Check(PASS, label, f"granted to the identity{scope}"))
        elif name.startswith("Mail."):
            checks.append(exchange_scoped(name, "not an app role of the identity"))
        else:
            checks.append(
                Check(FAIL, label, f"NOT granted to the identity {principal_id}", grant_fix(name))
            )
    return checks


STORAGE_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
}
"""The data roles the app's identity needs on its storage account (infra/app/rbac.bicep)."""


async def storage_role_checks(target: Target, principal_id: str, credential: Any) -> list[Check]:
    """One check per storage data role, read from Azure Resource Manager with the admin's
    sign-in; skipped (with the az command that lists them) when the azd values do not name
    the account or no ARM endpoint is known."""
    if not (target.storage_scope and target.arm_url and credential is not None):
        return [
            Check(
                SKIP,
                "storage roles",
                "not read: needs AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and "
                "AZURE_STORAGE_ACCOUNT_NAME (azd env get-values) and a sign-in; "
                f"az role assignment list --assignee {principal_id} --all -o table",
            )
        ]
    try:
        held = await role_definitions_covering(
            target.arm_url, target.storage_scope, principal_id, credential
        )
    except DirectoryError as exc:
        return [
            Check(
                FAIL,
                "storage roles",
                f"cannot read the identity's role assignments: {exc}",
                "sign in (az login) as someone with Reader on the resource group",
            )
        ]
    account = target.storage_scope.rsplit("/", 1)[-1]
    return [
        Check(PASS, f"storage {name}", f"held by the identity on {account}")
        if role_id in held
        else Check(
            FAIL,
            f"storage {name}",
            f"NOT held by the identity {principal_id} on {account}",
            "`azd provision` assigns it (infra/app/rbac.bicep)",
        )
        for role_id, name in STORAGE_ROLES.items()
    ]
