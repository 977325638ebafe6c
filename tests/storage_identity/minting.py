"""A `TokenCredential` of ours that mints the bearer tokens Azurite's ``--oauth basic`` takes.

Azurite 3.37 (``node_modules/azurite/dist/src/{blob,queue,table}/authentication/
*TokenAuthenticator.js``) decodes the JWT without checking its signature and requires ``iat``,
``nbf`` and ``exp`` with ``nbf <= now <= exp``; an ``iss`` that starts with a known Entra issuer
(``https://sts.windows.net/``, ...); and an ``aud`` that is a storage audience
(``https://storage.azure.com``, the storage app id, or ``https://<account>.<service>.core.
windows.net``), else it answers 401 ``AuthenticationFailed`` "Invalid token audience.".

Like Entra ID, the token's audience is the requested scope without ``/.default``, so a client
asking for the wrong scope is refused too; `audience` forces another one (a misconfigured
token). Every `get_token` call is recorded so tests see what the storage SDKs asked for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import orjson
from azure.core.credentials import AccessToken

STORAGE_SCOPE: Final = "https://storage.azure.com/.default"
TEST_TENANT: Final = "0f0e0d0c-0b0a-4908-8706-050403020100"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class MintingStorageCredential:
    """Mints a fresh JWT per `get_token` call, for the scope asked (or a forced `audience`)."""

    def __init__(
        self,
        *,
        audience: str | None = None,
        tenant_id: str = TEST_TENANT,
        lifetime_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._audience = audience
        self._tenant_id = tenant_id
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)  # Azurite does not check it; real tokens are signed
        self._lock = threading.Lock()
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The azure-core `TokenCredential` call the storage SDKs' bearer policy makes."""
        with self._lock:
            self.scopes_requested.append(tuple(scopes))
        if len(scopes) != 1:
            raise ValueError(f"one scope per token, as Entra ID wants; got {scopes!r}")
        now = int(self._clock())
        expires_on = now + self._lifetime
        audience = self._audience or scopes[0].removesuffix("/.default")
        claims_set = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self._tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "tid": self._tenant_id,
            "oid": "00000000-0000-4000-8000-00000000a11d",
        }
        header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        body = _b64url(orjson.dumps(claims_set))
        signed = f"{header}.{body}".encode("ascii")
        signature = _b64url(hmac.new(self._key, signed, hashlib.sha256).digest())
        return AccessToken(f"{header}.{body}.{signature}", expires_on)
