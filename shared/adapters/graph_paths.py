"""How a directory object's key goes into a Graph URL path, for the SDK's calls and for the
CLI's own requests (preflight) alike.

A key starting with `$` (a UPN may: `$svc@contoso.com`) is read by Graph as a system segment
(`/users/$svc@contoso.com` answers 400), so it goes in the key form `/users('$svc@contoso.com')`
with its quotes doubled (learn.microsoft.com/graph/api/user-get: "When the userPrincipalName
begins with a $ character ...").
"""

from __future__ import annotations

from urllib.parse import quote

SDK_USER_SEGMENT = "/users/{user%2Did}"
"""The msgraph request builders' user segment (`users.by_user_id(...)`)."""
SDK_USER_KEY_FORM = "/users('{user%2Did}')"
"""The same segment in Graph's key form; the SDK percent-encodes the value into it."""


def needs_key_form(key: str) -> bool:
    return key.startswith("$")


def key_literal(key: str) -> str:
    """The key as an OData string literal's content: single quotes doubled."""
    return key.replace("'", "''")


def entity_path(collection: str, key: str) -> str:
    """`/{collection}/{key}`, the key percent-encoded; one that starts with `$` in Graph's key
    form `/{collection}('{key}')`, its quotes doubled."""
    if needs_key_form(key):
        return f"/{collection}('{quote(key_literal(key), safe='@')}')"
    return f"/{collection}/{quote(key, safe='')}"
