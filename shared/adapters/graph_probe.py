"""A harmless GET against Graph for `license-guard preflight`: did a request a permission allows
succeed, and if not, which error (as the `Directory` port names errors) did Graph give? `read`
returns the answer too (the app roles granted to the app's identity).

It sends through the same client the service uses (`build_graph_client`: retry handler, token
scoped to the cloud's host), so a probe fails exactly as the service's own calls would.
"""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation

from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.adapters.graph_auth import credential_error
from shared.adapters.graph_errors import ERROR_MAP, to_directory_error
from shared.adapters.graph_transport import json_object
from shared.ports.directory import JSON, DirectoryError


class GraphProbe:
    """GETs paths under one Graph base URL; `aclose` closes its HTTP connections (not the
    credential, which the caller owns)."""

    def __init__(self, base_url: str, *, static_token: str | None, credential: Any) -> None:
        self._base_url = base_url
        self._client = build_graph_client(
            base_url, static_token=static_token, credential=credential
        )

    async def get(self, path: str) -> DirectoryError | None:
        """GET base_url + path; None when Graph answered a JSON object (a proxy's 200 sign-in
        page is no success), else the error Graph (or the transport) gave."""
        try:
            await self.read(path)
        except DirectoryError as exc:
            return exc
        return None

    async def read(self, path: str) -> JSON:
        """GET base_url + path: the JSON object Graph answered; DirectoryError otherwise."""
        return json_object(await self._get_bytes(path) or b"{}")

    async def _get_bytes(self, path: str) -> bytes | None:
        info = RequestInformation(Method.GET)
        info.url = self._base_url + path
        info.headers.try_add("Accept", "application/json")
        try:
            raw: bytes | None = await self._client.request_adapter.send_primitive_async(
                info, "bytes", ERROR_MAP
            )
        except APIError as exc:
            raise to_directory_error(exc) from None
        except ClientAuthenticationError as exc:
            raise credential_error(exc) from None
        except httpx.TransportError as exc:
            raise DirectoryError(503, "Unreachable", f"{type(exc).__name__}: {exc}") from None
        return raw

    async def aclose(self) -> None:
        await GraphDirectory(self._client).aclose()  # its HTTP connections
