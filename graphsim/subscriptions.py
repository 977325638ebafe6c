"""/subscriptions: Graph's rules for creating, renewing and deleting change-notification
subscriptions on users and groups (lifetime, quota, URL scheme, validation handshake)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .clock import iso7, parse_iso
from .errors import GraphError
from .notify import Notifier
from .odata import parse_query
from .paging import serve_page
from .state import SimState
from .wire import Req, Resp

Obj = dict[str, Any]
MAX_MINUTES = 41_760
MIN_MINUTES = 45
"""An expiration under 45 minutes after the request is set to 45 minutes after it (subscription
resource, expirationDateTime: "automatically set"; one in the past is still refused here, which
no doc page settles)."""
QUOTA_PER_APP = 100
_RESOURCE = re.compile(r"/?(groups|users)(/[0-9a-fA-F-]{36}(/members)?)?", re.I)
_CHANGE_TYPES = {"updated", "deleted"}
"""What user and group subscriptions take: no `created` (a creation is notified as `updated`;
subscription resource, changeType)."""


def _invalid(message: str) -> GraphError:
    return GraphError(400, "InvalidRequest", message)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: Any, name: str) -> str:
    if not isinstance(url, str) or not url:
        raise _invalid(f"{name} is a required property for subscription creation.")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise _invalid(f"The {name} must be a valid HTTPS URL.")


class SubscriptionService:
    """Handlers behind /subscriptions; subscriptions live in the state, delivery in the notifier."""

    def __init__(self, state: SimState, notifier: Notifier) -> None:
        self.state = state
        self.notifier = notifier

    def _expiry(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid("expirationDateTime is a required property for subscription creation.")
        try:
            when = parse_iso(value)
        except ValueError:
            raise _invalid(f"Invalid expirationDateTime '{value}'.") from None
        now = self.state.clock.now()
        if when <= now:
            raise _invalid("Subscription expiration can only be in the future.")
        if when > now + timedelta(minutes=MAX_MINUTES):
            raise _invalid(
                f"Subscription expiration can only be {MAX_MINUTES} minutes in the future."
            )
        return iso7(max(when, now + timedelta(minutes=MIN_MINUTES)))

    def _view(self, req: Req, sub: Obj, *, with_secret: bool = False) -> Obj:
        out = {k: v for k, v in sub.items() if not k.startswith("_")}
        if not with_secret:
            out["clientState"] = None
        return {"@odata.context": f"{req.base_url}/$metadata#subscriptions/$entity", **out}

    def _find(self, req: Req, sid: str) -> Obj:
        sub = self.state.subscriptions.get(sid)
        if sub is None or sub["applicationId"] != req.app_id:
            raise GraphError(404, "ResourceNotFound", f"The object '{sid}' was not found.")
        return sub

    async def create(self, req: Req) -> Resp:
        body = req.json()
        if not isinstance(body, dict):
            raise _invalid("Invalid subscription payload.")
        resource = body.get("resource")
        if not isinstance(resource, str) or not _RESOURCE.fullmatch(resource.strip()):
            raise _invalid(f"Resource '{resource}' is not supported.")
        change_type = body.get("changeType")
        kinds = [c.strip() for c in str(change_type or "").split(",") if c.strip()]
        if not kinds or any(k not in _CHANGE_TYPES for k in kinds):
            raise _invalid(
                f"Invalid changeType '{change_type}': user and group change notifications "
                "support updated and deleted."
            )
        notification_url = check_url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        if lifecycle is not None:
            lifecycle = check_url(lifecycle, "lifecycleNotificationUrl")
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > 128
        ):
            raise _invalid("clientState must be a string of at most 128 characters.")
        expiry = self._expiry(body.get("expirationDateTime"))
        mine = [s for s in self.state.subscriptions.values() if s["applicationId"] == req.app_id]
        if len(mine) >= QUOTA_PER_APP:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum "
                f"number of {QUOTA_PER_APP} subscriptions per application per tenant "
                "has been reached.]",
            )
        for url in dict.fromkeys([notification_url, lifecycle]):
            if url:
                await self.notifier.validate(url)
        sub: Obj = {
            "id": str(uuid.uuid4()),
            "resource": resource,
            "applicationId": req.app_id,
            "changeType": ",".join(kinds),
            "clientState": client_state,
            "notificationUrl": notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": lifecycle,
            "expirationDateTime": expiry,
            "creatorId": req.app_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
            "notificationContentType": "application/json",
        }
        self.state.subscriptions[sub["id"]] = sub
        return Resp(201, self._view(req, sub, with_secret=True))

    async def list(self, req: Req) -> Resp:
        """The app's subscriptions in pages (`x-graphsim.subscriptionsPageSize`, 100 unless
        set), with a nextLink as Graph answers (msgraph-sdk-javascript#906)."""
        mine = [
            s["id"] for s in self.state.subscriptions.values() if s["applicationId"] == req.app_id
        ]
        subs = self.state.subscriptions

        def view(sid: str) -> Obj | None:
            sub = subs.get(sid)
            if sub is None:
                return None
            return {k: v for k, v in self._view(req, sub).items() if k != "@odata.context"}

        size = int(self.state.x.get("subscriptionsPageSize", 100))
        query = parse_query({k: v for k, v in req.params.items() if k.lower() != "$top"})
        return serve_page(req, self.state, "subscriptions", mine, view, query, max_top=size)

    async def get(self, req: Req, sid: str) -> Resp:
        return Resp(200, self._view(req, self._find(req, sid)))

    async def update(self, req: Req, sid: str) -> Resp:
        sub = self._find(req, sid)
        body = req.json()
        if not isinstance(body, dict):
            raise _invalid("Invalid subscription payload.")
        if "lifecycleNotificationUrl" in body:
            raise _invalid(
                "lifecycleNotificationUrl cannot be updated; delete and recreate the subscription."
            )
        if "notificationUrl" in body:
            url = check_url(body["notificationUrl"], "notificationUrl")
            await self.notifier.validate(url)
            sub["notificationUrl"] = url
        if "expirationDateTime" in body:
            sub["expirationDateTime"] = self._expiry(body["expirationDateTime"])
            sub.pop("_reauthFor", None)
        return Resp(200, self._view(req, sub))

    async def delete(self, req: Req, sid: str) -> Resp:
        self._find(req, sid)
        del self.state.subscriptions[sid]
        return Resp(204)

    async def reauthorize(self, req: Req, sid: str) -> Resp:
        self._find(req, sid)
        return Resp(204)
