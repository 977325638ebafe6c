"""What an access token says about its holder: its claims, and the app roles it carries.

Decoded, not verified: the token is our own, just issued for Graph, and only tells us which
application permissions Graph will hold it to (preflight; the reprocess worker telling a
missing permission from one user Graph protects).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson


def token_claims(token: str) -> dict[str, Any] | None:
    """A JWT's payload, decoded without verification (None when not JWT-shaped)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def token_app_roles(token: str) -> frozenset[str] | None:
    """The app roles (application permissions) the token carries; None when it cannot say:
    not a JWT (a static token), or a user's token (its `scp` scopes, not roles, apply). An app
    token without a `roles` claim holds no app role (claims are present only with a value)."""
    claims = token_claims(token)
    if claims is None:
        return None
    roles = claims.get("roles")
    if isinstance(roles, list):
        return frozenset(str(r) for r in roles)
    return None if "scp" in claims else frozenset()
