"""Access tokens graphsim accepts: JWT-shaped like Entra ID's, signed with the `--token` secret.

Started with `--token SECRET`, graphsim accepts the bearer token `SECRET` itself (static-token
use) or any HS256 JWT signed with SECRET whose `exp` has not passed (wall-clock time, as Entra
ID's tokens) and whose `aud`, when present, is Microsoft Graph. Entra ID signs with RS256 keys
from its metadata; a shared secret keeps the simulator self-contained while the token still
travels, expires and is refreshed the way a real one does. Without `--token` every bearer
token is accepted. `mint` issues such tokens (`POST /_sim/token`) for demos.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import orjson

GRAPH_AUDIENCES = frozenset(
    {
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",  # Microsoft Graph's application id
    }
)
EXPIRED = "Lifetime validation failed, the token is expired."
INVALID = "Access token validation failure."
BAD_AUDIENCE = "Access token validation failure. Invalid audience."


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def claims_of(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped token (not verified), or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(_b64decode(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def rejection(token: str, secret: str | None, now: float | None = None) -> str | None:
    """Why graphsim refuses `token` (Graph's 401 message), or None when it is accepted."""
    if secret is None or hmac.compare_digest(token.encode(), secret.encode()):
        return None
    parts = token.split(".")
    claims = claims_of(token)
    if claims is None:
        return BAD_AUDIENCE  # what graphsim always said to a wrong static token
    try:
        header = orjson.loads(_b64decode(parts[0]))
        signature = _b64decode(parts[2])
    except (ValueError, orjson.JSONDecodeError):
        return INVALID
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return INVALID
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    if not hmac.compare_digest(signature, expected.digest()):
        return INVALID
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= (time.time() if now is None else now):
        return EXPIRED
    aud = claims.get("aud")
    if aud is not None and aud not in GRAPH_AUDIENCES:
        return BAD_AUDIENCE
    return None


def client_app_id(token: str) -> str | None:
    """The calling application's id from a JWT's `appid` (v1) or `azp` (v2) claim."""
    claims = claims_of(token) or {}
    value = claims.get("appid") or claims.get("azp")
    return str(value) if value else None


def app_id_for(token: str) -> str:
    """A stable pseudo application id per bearer token (each token = one client app); used when
    the token names no `appid`/`azp`."""
    return str(uuid.UUID(bytes=hashlib.sha256(token.encode()).digest()[:16], version=4))


def roles_of(token: str) -> frozenset[str] | None:
    """The app roles a JWT's `roles` claim lists; None when the token has no such claim."""
    claims = claims_of(token)
    value = claims.get("roles") if claims else None
    if not isinstance(value, list):
        return None
    return frozenset(str(role) for role in value)


def mint(secret: str, claims: dict[str, Any], lifetime: float = 3600.0) -> str:
    """An HS256 JWT graphsim started with `--token secret` accepts until `lifetime` passes."""
    now = int(time.time())
    body = {"aud": "https://graph.microsoft.com", "iat": now, "nbf": now} | claims
    body.setdefault("exp", now + int(lifetime))
    head = _b64encode(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64encode(orjson.dumps(body))
    sig = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64encode(sig)}"
