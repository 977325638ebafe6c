"""`FakeSubscriptions`: the Directory port's change-notification subscriptions in memory.

Like Graph, an expiration must be in the future and at most 41,760 minutes away (one under 45
minutes away is set to 45 minutes after the request, as Graph does); renewing,
reauthorizing or deleting an unknown subscription behaves as Graph answers. And like Graph (and
graphsim), a subscription not renewed before its expiration is deleted: no longer listed, and
404 to a read, a renewal or a reauthorization.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from shared.core.graph_values import parse_graph_time
from shared.fakes.tenant import FakeTenant, graph_iso
from shared.ports.directory import DirectoryError, Subscription, SubscriptionRequest

SUBSCRIPTION_MAX_MINUTES = 41_760
SUBSCRIPTION_MIN_MINUTES = 45
"""Graph sets an expiration under 45 minutes after the request to 45 minutes after it."""


class FakeSubscriptions(FakeTenant):
    """Subscriptions kept in `_subs`, checked against `now()`."""

    def _drop_expired(self) -> None:
        """Graph deletes a subscription at its expiration: so does every call here first."""
        now = self._now()
        for sub in list(self._subs.values()):
            if parse_graph_time(sub.expiration) <= now:
                del self._subs[sub.id]

    def _expiry(self, expiration: str) -> str:
        try:
            when = parse_graph_time(expiration)
        except ValueError:
            raise DirectoryError(
                400, "InvalidRequest", f"Invalid expirationDateTime '{expiration}'."
            ) from None
        now = self._now()
        if when <= now:
            raise DirectoryError(
                400, "InvalidRequest", "Subscription expiration can only be in the future."
            )
        if when > now + timedelta(minutes=SUBSCRIPTION_MAX_MINUTES):
            raise DirectoryError(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {SUBSCRIPTION_MAX_MINUTES} minutes "
                "in the future.",
            )
        return graph_iso(max(when, now + timedelta(minutes=SUBSCRIPTION_MIN_MINUTES)))

    async def subscriptions(self) -> list[Subscription]:
        self._count("subscriptions")
        self._drop_expired()
        return list(self._subs.values())

    async def subscription(self, subscription_id: str) -> Subscription | None:
        self._count("subscription")
        self._drop_expired()
        return self._subs.get(subscription_id)

    async def create_subscription(self, request: SubscriptionRequest) -> Subscription:
        self._count("create_subscription")
        sub = Subscription(
            id=str(uuid.uuid4()),
            resource=request.resource,
            change_type=request.change_type,
            notification_url=request.notification_url,
            lifecycle_notification_url=request.lifecycle_notification_url,
            expiration=self._expiry(request.expiration),
        )
        self._subs[sub.id] = sub
        return sub

    def _sub(self, subscription_id: str) -> Subscription:
        sub = self._subs.get(subscription_id)
        if sub is None:
            raise DirectoryError(
                404, "ResourceNotFound", f"The object '{subscription_id}' was not found."
            )
        return sub

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        self._count("renew_subscription")
        self._drop_expired()
        old = self._sub(subscription_id)
        new = replace(old, expiration=self._expiry(expiration))
        self._subs[old.id] = new
        return new

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        self._count("reauthorize_subscription")
        self._drop_expired()
        self._sub(subscription_id)

    async def delete_subscription(self, subscription_id: str) -> None:
        self._count("delete_subscription")
        self._drop_expired()
        self._subs.pop(subscription_id, None)
