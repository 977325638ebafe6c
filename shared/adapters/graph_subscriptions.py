"""`GraphSubscriptions`: the Directory port's change-notification subscription calls.

Subscriptions are small objects, so these use the SDK's typed calls and translate its model
into the port's `Subscription`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from msgraph.generated.models.subscription import Subscription as GraphSubscription

from shared.adapters.graph_transport import GraphTransport
from shared.core.graph_values import parse_graph_time
from shared.ports.directory import DirectoryError, Subscription, SubscriptionRequest
from shared.ports.paging import FollowedLinks


def graph_iso(dt: datetime | None) -> str:
    """An SDK datetime in Graph's form (UTC, `Z`); "" for none."""
    if dt is None:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _subscription(sub: GraphSubscription | None) -> Subscription:
    if sub is None:
        raise DirectoryError(502, "EmptyResponse", "Graph returned no subscription")
    return Subscription(
        id=str(sub.id or ""),
        resource=str(sub.resource or ""),
        change_type=str(sub.change_type or ""),
        notification_url=str(sub.notification_url or ""),
        lifecycle_notification_url=sub.lifecycle_notification_url,
        expiration=graph_iso(sub.expiration_date_time),
    )


class GraphSubscriptions(GraphTransport):
    """Create, read, renew, reauthorize and delete subscriptions (`/subscriptions`)."""

    async def _typed(self, call: Callable[[], Awaitable[Any]], *, idempotent: bool = True) -> Any:
        return await self._retrying(call, idempotent=idempotent)

    async def subscriptions(self) -> list[Subscription]:
        """The app's subscriptions, every page (Graph pages the listing); a nextLink followed
        before raises (`next_link_repeated`) instead of being asked for until the timeout."""
        found: list[Subscription] = []
        followed = FollowedLinks()
        page = await self._typed(self._client.subscriptions.get)
        while page is not None:
            found.extend(_subscription(s) for s in page.value or [])
            if not page.odata_next_link:
                break
            followed.follow(page.odata_next_link)
            builder = self._client.subscriptions.with_url(page.odata_next_link)
            page = await self._typed(builder.get)
        return found

    async def subscription(self, subscription_id: str) -> Subscription | None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            return _subscription(await self._typed(item.get))
        except DirectoryError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_subscription(self, request: SubscriptionRequest) -> Subscription:
        body = GraphSubscription(
            resource=request.resource,
            change_type=request.change_type,
            notification_url=request.notification_url,
            lifecycle_notification_url=request.lifecycle_notification_url,
            client_state=request.client_state,
            expiration_date_time=parse_graph_time(request.expiration),
        )
        # Not repeated on a dropped connection: the keeper finds a subscription whose answer
        # was lost as ours on its next look, and deletes extras.
        post = self._client.subscriptions.post
        return _subscription(await self._typed(lambda: post(body), idempotent=False))

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        body = GraphSubscription(expiration_date_time=parse_graph_time(expiration))
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        return _subscription(await self._typed(lambda: item.patch(body)))

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        await self._typed(item.reauthorize.post)

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete; a subscription that is already gone (404) counts as deleted."""
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            await self._typed(item.delete)
        except DirectoryError as exc:
            if exc.status != 404:
                raise
