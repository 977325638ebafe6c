"""`MintingCredential`: an `AsyncTokenCredential` of ours that mints graphsim's access tokens.

It stands where `DefaultAzureCredential` stands in production, so tests run the very code path
the deployed service runs (kiota's `AzureIdentityAuthenticationProvider` asking a credential for
a token per request). Tokens are HS256 JWTs signed with the secret graphsim was started with
(`--token SECRET`, see graphsim/tokens.py), minted here with PyJWT, independently of graphsim's
own code. Like azure-identity's credentials it caches its token and mints a new one only when
the cached one has expired, so a short `lifetime` shows the refresh.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from azure.core.credentials import AccessToken

TEST_APP_ID = "5d1c8d63-9f4c-4a57-8f1f-1b7d1e0a7c11"
TEST_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
READ_ROLES = ("Group.Read.All", "User.Read.All", "Organization.Read.All", "AuditLog.Read.All")
"""The read-only grant (graph_permissions.grant(["read"])): graphsim enforces token roles."""


@dataclass
class MintingCredential:
    """Hands out tokens for `secret`; records every `get_token` call's scopes."""

    secret: str
    lifetime: float = 3600.0
    claims: dict[str, Any] = field(default_factory=dict)
    refresh: bool = True
    """False: keep handing out the first token even once expired (a stale cache)."""
    requests: list[tuple[str, ...]] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)
    closed: bool = False
    _cached: AccessToken | None = None

    async def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        """A token whose audience is the first scope's resource; the options an
        `AsyncTokenCredential` takes (claims, tenant_id, enable_cae) change nothing here."""
        self.requests.append(scopes)
        cached = self._cached
        if cached is not None and (not self.refresh or cached.expires_on > time.time()):
            return cached
        now = int(time.time())
        audience = scopes[0].removesuffix("/.default") if scopes else None
        payload = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{TEST_TENANT_ID}/",
            "iat": now,
            "nbf": now,
            "exp": now + int(self.lifetime),
            "appid": TEST_APP_ID,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"oid/{TEST_APP_ID}")),
            "tid": TEST_TENANT_ID,
            "roles": list(READ_ROLES),
            "jti": str(uuid.uuid4()),  # every minted token differs
        } | self.claims
        token = jwt.encode(payload, self.secret, algorithm="HS256")
        self.minted.append(token)
        self._cached = AccessToken(token, payload["exp"])
        return self._cached

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> MintingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
