"""The Azure roles one principal holds on one resource, read from Azure Resource Manager.

For `license-guard preflight --principal-id`: which data roles the app's identity holds on its
storage account. "Role Assignments - List For Scope" (api-version 2022-04-01,
learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope) with
`$filter=principalId eq '{id}'` returns the principal's assignments at, above and below the
scope; only those at the scope or above it (the resource group, the subscription, a management
group, the root `/`) cover the whole resource, so those below it are dropped. Reading them needs
`Microsoft.Authorization/roleAssignments/read` (Reader on the resource group is enough).
"""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.exceptions import ClientAuthenticationError

from shared.ports.directory import DirectoryError

API_VERSION = "2022-04-01"
ARM_BY_GRAPH_HOST = {
    "graph.microsoft.com": "https://management.azure.com",
    "graph.microsoft.us": "https://management.usgovcloudapi.net",
    "dod-graph.microsoft.us": "https://management.usgovcloudapi.net",
    "microsoftgraph.chinacloudapi.cn": "https://management.chinacloudapi.cn",
}
"""Each Graph cloud's Azure Resource Manager endpoint."""


def storage_account_scope(subscription_id: str, resource_group: str, account: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )


async def role_definitions_covering(
    arm_url: str, scope: str, principal_id: str, credential: Any
) -> set[str]:
    """The role definition ids (GUIDs, lower case) `principal_id` holds on all of `scope`;
    DirectoryError (status, ARM's error code) when ARM refuses or cannot be reached."""
    try:
        token = (await credential.get_token(f"{arm_url}/.default")).token
    except ClientAuthenticationError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DirectoryError(401, "CredentialUnavailable", first) from None
    url = f"{arm_url}{scope}/providers/Microsoft.Authorization/roleAssignments"
    params = {"api-version": API_VERSION, "$filter": f"principalId eq '{principal_id}'"}
    covering: set[str] = set()
    async with httpx.AsyncClient(timeout=30.0) as http:
        next_url: str | None = url
        while next_url:
            try:
                resp = await http.get(
                    next_url,
                    params=params if next_url == url else None,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as exc:
                raise DirectoryError(503, "Unreachable", f"{type(exc).__name__}: {exc}") from None
            try:
                body = resp.json() if resp.content else {}
            except ValueError:  # a proxy's or a wrong ARM_BASE_URL's page
                body = None
            if not isinstance(body, dict):
                kind = resp.headers.get("content-type") or "no content type"
                raise DirectoryError(resp.status_code, "NotArmJson", f"not ARM's JSON ({kind})")
            if resp.status_code != 200:
                error = body.get("error") if isinstance(body.get("error"), dict) else None
                code = str((error or {}).get("code") or f"HTTP{resp.status_code}")
                message = str((error or {}).get("message") or resp.reason_phrase)
                raise DirectoryError(resp.status_code, code, message)
            for item in body.get("value") or []:
                props = item.get("properties") or {}
                held = str(props.get("scope") or "").strip().lower()
                if held and not held.startswith(f"{scope.lower().rstrip('/')}/"):  # not below
                    definition = str(props.get("roleDefinitionId") or "")
                    covering.add(definition.rsplit("/", 1)[-1].lower())
            next_url = body.get("nextLink")
    return covering
