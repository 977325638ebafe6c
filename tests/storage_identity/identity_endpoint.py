"""A managed-identity endpoint of ours, the one Azure Functions gives an app (App Service style).

In Azure the platform sets ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``; azure-identity's
`ManagedIdentityCredential` (through MSAL) then asks ``GET <endpoint>?api-version=2019-08-01&
resource=<resource>&client_id=<id>`` with the header ``X-IDENTITY-HEADER`` and reads
``{"access_token", "expires_on", "resource", "token_type"}`` ("REST endpoint reference",
https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference).
This endpoint answers that on loopback, so the composition root's own `DefaultAzureCredential`
runs unchanged, and records every request: how many token requests the worker really makes.

Tokens are minted by one `MintingCredential` (tests/credentials.py) per resource, signed with
graphsim's secret: graphsim takes the Graph ones, Azurite (``--oauth basic``, signature not
checked) the storage ones.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.credentials import MintingCredential
from tests.loopback import serving


@dataclass
class IdentityEndpoint:
    """What the endpoint saw: one (resource, client_id) per token request."""

    url: str
    header: str
    secret: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    _minters: dict[str, MintingCredential] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mint(self, resource: str, client_id: str | None) -> tuple[str, int]:
        with self._lock:
            self.requests.append((resource, client_id))
            minter = self._minters.setdefault(resource, MintingCredential(self.secret))
        token = asyncio.run(minter.get_token(f"{resource}/.default"))
        return token.token, token.expires_on


def _handler(endpoint: IdentityEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != endpoint.header:
                self._answer(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
                return
            resource = query.get("resource", [""])[0].rstrip("/")
            client_id = query.get("client_id", [None])[0]
            token, expires_on = endpoint.mint(resource, client_id)
            self._answer(
                200,
                {
                    "access_token": token,
                    "expires_on": str(expires_on),
                    "resource": resource,
                    "token_type": "Bearer",
                },
            )

        def _answer(self, status: int, body: dict[str, str]) -> None:
            raw = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def identity_endpoint(secret: str) -> Iterator[IdentityEndpoint]:
    """The endpoint on a free loopback port, served in a thread until the block ends."""
    endpoint = IdentityEndpoint(url="", header=secrets.token_hex(16), secret=secret)
    with serving(_handler(endpoint)) as base_url:
        endpoint.url = f"{base_url}/msi/token"
        yield endpoint
