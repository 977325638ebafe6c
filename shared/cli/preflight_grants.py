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

from urllib.parse import quote

from shared.adapters.graph_permissions import grant
from shared.cli.permissions import csv_role_ids
from shared.cli.preflight_checks import (
    FAIL,
    PASS,
    Check,
    Probe,
    Target,
    grant_fix,
    has_role,
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
        else:
            checks.append(
                Check(FAIL, label, f"NOT granted to the identity {principal_id}", grant_fix(name))
            )
    return checks
