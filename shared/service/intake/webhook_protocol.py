"""Microsoft Graph webhook protocol: validation handshake, and vetting change notifications.

Graph POSTs a collection `{"value": [changeNotification, ...]}`, possibly for several
subscriptions at once, and expects a 2xx within 3 seconds; slow endpoints are throttled, then
dropped. So the webhook only vets and enqueues: it never calls Graph. An item is accepted only
when its `clientState` matches the current or previous secret (rotation; compared in constant
time), its `subscriptionId` is one of ours and its `tenantId` is our tenant. Forged or foreign
items are dropped and reported, never enqueued. No I/O here: the caller brings the known
subscription ids and secrets.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

MAX_BODY_BYTES = 1_000_000
MAX_VALIDATION_TOKEN_CHARS = 1024
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_GROUP_RESOURCE = re.compile(r"/?groups/(?P<id>[^/?]+)", re.IGNORECASE)
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


class MalformedNotification(ValueError):
    """The body is not a change-notification collection: answer 400, enqueue nothing."""


class NotificationTooLarge(ValueError):
    """The body exceeds MAX_BODY_BYTES: answer 413."""


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.fullmatch(value))


def validation_response_text(token: str) -> str:
    """The token to echo, capped in length: Graph requires the URL-decoded value back.

    The Functions host (and Starlette on the dev host) hand us query values decoded once
    already, which is exactly what Graph wants; decoding again would turn a literal `%2B` of
    the token into `+`. So the value is echoed as given, never decoded a second time.
    """
    return token[:MAX_VALIDATION_TOKEN_CHARS]


def secrets_match(candidate: object, secrets: Iterable[str]) -> bool:
    """Constant-time comparison against every configured secret (current and previous)."""
    return _SecretCheck(secrets)(candidate)


class _SecretCheck:
    """`secrets_match` for many items: secrets encoded once, each distinct candidate compared
    once per request (a forged body repeats one value thousands of times)."""

    __slots__ = ("_memo", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(s.encode() for s in secrets if s)
        self._memo: dict[str, bool] = {}

    def __call__(self, candidate: object) -> bool:
        if not isinstance(candidate, str):
            return False
        known = self._memo.get(candidate)
        if known is not None:
            return known
        given = candidate.encode("utf-8", "surrogatepass")
        matched = False
        for secret in self._secrets:
            matched |= hmac.compare_digest(given, secret)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[candidate] = matched
        return matched


_MEMO_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    subscription_id: str | None
    resource: str | None


@dataclass(frozen=True, slots=True)
class VettedNotifications:
    group_ids: tuple[str, ...]
    """Deduplicated ids of groups that changed (order of first appearance)."""
    deleted_group_ids: tuple[str, ...]
    lifecycle: tuple[tuple[str, str], ...]
    """(subscriptionId, lifecycleEvent) pairs that passed the checks, each once."""
    rejected: tuple[Rejection, ...]


def parse_collection(body: bytes) -> list[dict[str, Any]]:
    """The `value` items of a notification POST, or MalformedNotification/NotificationTooLarge."""
    if len(body) > MAX_BODY_BYTES:
        raise NotificationTooLarge(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedNotification(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("value"), list):
        raise MalformedNotification("body must be an object with a 'value' list")
    items: list[dict[str, Any]] = document["value"]
    if not all(isinstance(item, dict) for item in items):
        raise MalformedNotification("every item of 'value' must be an object")
    return items


def vet_notifications(
    items: list[dict[str, Any]],
    *,
    client_states: Collection[str],
    subscription_ids: Collection[str],
    tenant_id: str,
) -> VettedNotifications:
    """Keep the items that are ours and genuine; say why each other one was dropped."""
    group_ids: dict[str, None] = {}
    deleted: dict[str, None] = {}
    lifecycle: dict[tuple[str, str], None] = {}  # a repeat is acted on once
    rejected: list[Rejection] = []
    secret_check = _SecretCheck(client_states)
    for item in items:
        subscription_id = item.get("subscriptionId")
        resource = item.get("resource")
        sub = subscription_id if isinstance(subscription_id, str) else None
        res = resource if isinstance(resource, str) else None
        reason = _reject_reason(item, secret_check, subscription_ids, tenant_id)
        if reason:
            rejected.append(Rejection(reason, sub, res))
            continue
        event = item.get("lifecycleEvent")
        if event is not None:
            lifecycle.setdefault((str(sub).lower(), str(event)), None)
            continue
        group_id = _group_id(item)
        if group_id is None:
            rejected.append(Rejection("resource is not a group", sub, res))
            continue
        group_ids.setdefault(group_id.lower(), None)
        if item.get("changeType") == "deleted":
            deleted.setdefault(group_id.lower(), None)
    return VettedNotifications(tuple(group_ids), tuple(deleted), tuple(lifecycle), tuple(rejected))


def _reject_reason(
    item: dict[str, Any],
    secret_check: _SecretCheck,
    subscription_ids: Collection[str],
    tenant_id: str,
) -> str | None:
    if not secret_check(item.get("clientState")):
        return "clientState does not match"
    subscription_id = item.get("subscriptionId")
    if not is_guid(subscription_id):
        return "subscriptionId is not a GUID"
    if str(subscription_id).lower() not in subscription_ids:
        return "subscriptionId is not ours"
    tenant = item.get("tenantId")
    if not is_guid(tenant) or str(tenant).lower() != tenant_id.lower():
        return "tenantId is not our tenant"
    return None


def _group_id(item: dict[str, Any]) -> str | None:
    data = item.get("resourceData")
    if isinstance(data, dict) and is_guid(data.get("id")):
        odata_type = str(data.get("@odata.type") or "#microsoft.graph.group").lower()
        return str(data["id"]) if odata_type.endswith(".group") else None
    resource = item.get("resource")
    match = _GROUP_RESOURCE.fullmatch(resource) if isinstance(resource, str) else None
    if match and is_guid(match.group("id")):
        return match.group("id")
    return None
