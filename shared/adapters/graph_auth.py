"""Which Graph cloud a base URL names, and the credential the service signs in to it with.

`GRAPH_BASE_URL` decides everything: the host the SDK may send the token to (kiota's allowed
hosts) and the scope the token is requested for (`https://<host>/.default`), so a national
cloud works by setting that one value. The hosts are Microsoft's national cloud deployments
(https://learn.microsoft.com/graph/deployments); graphsim on a loopback address stands in for
the global service, so its tokens are requested for `https://graph.microsoft.com/.default`.

msgraph-core's own default host list carries an `https://` prefix that kiota-abstractions
rejects (msgraph-sdk-python-core#917), which is why the hosts are always passed explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.platform.setting_values import is_loopback_host
from shared.ports.directory import DirectoryError

GLOBAL_HOST = "graph.microsoft.com"
NATIONAL_CLOUD_HOSTS: Mapping[str, str] = {
    GLOBAL_HOST: "global",
    "graph.microsoft.us": "US Government L4",
    "dod-graph.microsoft.us": "US Government L5 (DOD)",
    "microsoftgraph.chinacloudapi.cn": "China (21Vianet)",
}
"""Microsoft Graph hosts per national cloud deployment (graph.microsoft.de is retired)."""
MANAGED_IDENTITY_SETTING = "AZURE_CLIENT_ID"
"""The client id of the user-assigned managed identity (set by infra/app/api.bicep)."""


class GraphEndpointError(ValueError):
    """GRAPH_BASE_URL names no Microsoft Graph cloud (nor graphsim on loopback)."""


@dataclass(frozen=True, slots=True)
class GraphEndpoint:
    """Where the service talks to Graph, and what its token is for."""

    base_url: str
    host: str
    cloud: str
    """`global`, a national cloud's name, or `graphsim (loopback)`."""

    @property
    def scope(self) -> str:
        """The app-only scope for this cloud: `https://<host>/.default`."""
        host = GLOBAL_HOST if self.is_loopback else self.host
        return f"https://{host}/.default"

    @property
    def allowed_hosts(self) -> list[str]:
        """The hosts the SDK attaches the token for (nothing else ever gets it)."""
        return [self.host]

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


GRAPH_VERSIONS = frozenset({"v1.0", "beta"})
"""The path a Microsoft Graph base URL ends in: its API version."""


def graph_endpoint(base_url: str) -> GraphEndpoint:
    """The cloud `base_url` belongs to; GraphEndpointError for anything else.

    Microsoft Graph is https only, and its base URL names the API version (`/v1.0`); plain
    http, and any path, are accepted for graphsim on loopback."""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise GraphEndpointError(f"GRAPH_BASE_URL {base_url!r} is not an absolute http(s) URL")
    if is_loopback_host(host):
        return GraphEndpoint(base_url.rstrip("/"), host, "graphsim (loopback)")
    cloud = NATIONAL_CLOUD_HOSTS.get(host)
    if cloud is None:
        known = ", ".join(NATIONAL_CLOUD_HOSTS)
        raise GraphEndpointError(
            f"GRAPH_BASE_URL {base_url!r}: {host!r} is not a Microsoft Graph host ({known}; "
            "or graphsim on a loopback address)"
        )
    if parts.scheme != "https":
        raise GraphEndpointError(f"GRAPH_BASE_URL {base_url!r}: Microsoft Graph is https only")
    version = parts.path.strip("/")
    if version.lower() not in GRAPH_VERSIONS:
        # Graph answers every request without its version 400 "Invalid version."
        use = f"use '{parts.scheme}://{parts.netloc.lower()}/v1.0'"
        if not version:
            raise GraphEndpointError(f"GRAPH_BASE_URL {base_url!r} names no API version: {use}")
        raise GraphEndpointError(
            f"GRAPH_BASE_URL {base_url!r}: API version {version!r} is not one of Graph's "
            f"(v1.0, beta): {use}"
        )
    return GraphEndpoint(base_url.rstrip("/"), host, cloud)


def managed_identity_client_id(env: Mapping[str, str]) -> str | None:
    """The user-assigned identity AZURE_CLIENT_ID names (None: unset or blank, the default)."""
    return (env.get(MANAGED_IDENTITY_SETTING) or "").strip() or None


def default_credential(env: Mapping[str, str]) -> Any:
    """The production credential: `DefaultAzureCredential` (azure.identity.aio).

    In Azure it signs in as the user-assigned managed identity named by AZURE_CLIENT_ID; on a
    laptop it falls through to the Azure CLI (`az login`) and the other developer credentials.
    Imported and created only when asked for: never a credential at import time.
    """
    from azure.identity.aio import DefaultAzureCredential  # noqa: PLC0415

    return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id(env))


def credential_error(exc: Exception) -> DirectoryError:
    """A credential that could not produce a token (azure-identity's ClientAuthenticationError,
    CredentialUnavailableError): a clear 401 instead of the SDK's traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # DefaultAzureCredential lists each credential it tried; its trailing link adds nothing
    detail = "; ".join(line for line in lines if not line.startswith("To mitigate"))[:600]
    return DirectoryError(
        401,
        "CredentialUnavailable",
        f"no access token for Microsoft Graph ({type(exc).__name__}: "
        f"{detail or 'no detail'}); in Azure check AZURE_CLIENT_ID (the user-assigned "
        "identity), locally run `az login`",
    )
