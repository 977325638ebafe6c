"""Service-layer test world: a `Services` over the demo tenant, in memory, with a clock tests move.

`FakeDirectory` plays Graph (a deep copy of the demo snapshot per test), the queues and tables
are the in-memory adapters, and one `Clock` drives both the services' `now()` and the queues'
visibility timeouts, so "wait 30 s" is `clock.advance(30)`. `drain` receives, decodes and
deletes what a queue holds, so a test walks the pipeline one step at a time.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.bootstrap import in_memory_services
from shared.fakes.directory import FakeDirectory
from shared.platform.settings import Settings
from shared.ports.messages import (
    DeltaSweep,
    GroupsChanged,
    LifecycleEvent,
    Message,
    RecomputeUsers,
    ReprocessUser,
)
from shared.ports.queues import (
    GROUPS_CHANGED,
    RECOMPUTE_USERS,
    REPROCESS_USER,
    SUBSCRIPTION_LIFECYCLE,
    MessageQueue,
)
from shared.service.groups import GroupChangeOutcome, handle_group_changes
from shared.service.reprocessing import ReprocessOutcome, reprocess_user
from shared.service.services import Services
from shared.service.subscriptions import SUBSCRIPTION_PK, on_lifecycle_event
from shared.service.users import RecomputeOutcome, recompute_users
from tests.builders import guid
from tests.demo_tenant import DEMO
from tests.notifications import group_notification
from tests.settings_env import SCHEDULE_ENV

TENANT_ID = "00000000-0000-4000-8000-000000000001"
CLIENT_STATE = "test-client-state-0123456789"
PREVIOUS_CLIENT_STATE = "old-client-state-0123456789"
NOTIFICATION_URL = "https://guard.example.net/api/graph/notifications"
LIFECYCLE_URL = "https://guard.example.net/api/graph/lifecycle"
SUBSCRIPTION_ID = "5e7a1f3c-2b4d-4c6e-8f90-a1b2c3d4e5f6"
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

M = TypeVar("M", bound=Message)

BASE_ENV: Mapping[str, str] = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "TENANT_ID": TENANT_ID,
    "NOTIFICATION_URL": NOTIFICATION_URL,
    "LIFECYCLE_NOTIFICATION_URL": LIFECYCLE_URL,
    "CLIENT_STATE": CLIENT_STATE,
    "CLIENT_STATE_PREVIOUS": PREVIOUS_CLIENT_STATE,
    **SCHEDULE_ENV,
}


def demo_snapshot() -> dict[str, Any]:
    return copy.deepcopy(json.loads(DEMO.read_text(encoding="utf-8")))


def many_groups_per_user(
    groups: int, users: int, per_user: int
) -> tuple[dict[str, Any], list[str], dict[str, list[str]]]:
    """The demo tenant plus `groups` licensed groups and `users` users, each user a direct
    member of `per_user` of them (seeded): the snapshot, the new users' ids and each new
    group's user members (in the users' order)."""
    snapshot = demo_snapshot()
    sku = snapshot["subscribedSkus"][0]["skuId"]
    rng = random.Random(7)
    group_ids = [guid("group", f"many-{i}") for i in range(groups)]
    user_ids = [guid("user", f"many-{i}") for i in range(users)]
    members: dict[str, list[str]] = {g: [] for g in group_ids}
    for user_id in user_ids:
        for group_id in rng.sample(group_ids, per_user):
            members[group_id].append(user_id)
    snapshot["users"] += [
        {"id": u, "userPrincipalName": f"many{i}@contoso.com", "displayName": f"Many {i}"}
        for i, u in enumerate(user_ids)
    ]
    snapshot["groups"] += [
        {
            "id": g,
            "displayName": f"Licensing_Many_{i}",
            "securityEnabled": True,
            "groupTypes": [],
            "assignedLicenses": [{"skuId": sku, "disabledPlans": []}],
            "licenseProcessingState": {"state": "ProcessingComplete"},
            "members": [{"@odata.type": "#microsoft.graph.user", "id": u} for u in members[g]],
        }
        for i, g in enumerate(group_ids)
    ]
    return snapshot, user_ids, members


def settings_for(**overrides: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **overrides})


@dataclass
class Clock:
    """One controllable time for services (`now`) and queues (`monotonic`, seconds)."""

    at: datetime = START

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - START).total_seconds()

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class World:
    """Everything a service test touches: the services and the fakes behind them."""

    svc: Services
    directory: FakeDirectory
    clock: Clock
    drained: list[Message] = field(default_factory=list)

    def queue(self, name: str) -> MessageQueue:
        return self.svc.queues.by_name(name)

    def with_settings(self, **overrides: str) -> World:
        """The same fakes and stores under other settings (e.g. mode flipped after queueing)."""
        self.svc.settings = settings_for(**overrides)
        return self

    def messages(self, name: str) -> list[Message]:
        """Drain one queue (see `drain`)."""
        return drain(self.queue(name))

    def messages_of(self, name: str, kind: type[M]) -> list[M]:
        """Drain one queue whose messages must all be of one type."""
        msgs = self.messages(name)
        assert all(isinstance(m, kind) for m in msgs)
        return [m for m in msgs if isinstance(m, kind)]

    # One pipeline step each: drain the step's queue and run its service on every message.

    async def run_group_changes(self) -> list[GroupChangeOutcome]:
        outcomes = []
        for msg in self.messages(GROUPS_CHANGED):
            assert isinstance(msg, GroupsChanged | DeltaSweep)
            outcomes.append(await handle_group_changes(self.svc, msg))
        return outcomes

    async def run_recompute(self) -> list[RecomputeOutcome]:
        return [
            await recompute_users(self.svc, msg)
            for msg in self.messages_of(RECOMPUTE_USERS, RecomputeUsers)
        ]

    async def run_reprocess(self) -> list[ReprocessOutcome]:
        return [
            await reprocess_user(self.svc, msg)
            for msg in self.messages_of(REPROCESS_USER, ReprocessUser)
        ]

    async def run_lifecycle(self) -> list[str]:
        """The `subscription-lifecycle` worker on every visible event; what each did."""
        return [
            await on_lifecycle_event(self.svc, msg)
            for msg in self.messages_of(SUBSCRIPTION_LIFECYCLE, LifecycleEvent)
        ]

    def subscribe(self, subscription_id: str = SUBSCRIPTION_ID) -> str:
        """Record a subscription as ours, as the keeper does (table `subscriptions`)."""
        self.svc.tables.subscriptions.upsert(SUBSCRIPTION_PK, subscription_id, {})
        return subscription_id


def notification(group_id: str, **overrides: object) -> dict[str, object]:
    """One change notification for a group, as Graph posts it for our subscription."""
    item = group_notification(
        group_id,
        subscription_id=SUBSCRIPTION_ID,
        client_state=CLIENT_STATE,
        tenant_id=TENANT_ID,
        expires="2026-12-20T00:00:00Z",
    )
    item.update(overrides)
    return item


def lifecycle(event: str, **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "subscriptionId": SUBSCRIPTION_ID,
        "clientState": CLIENT_STATE,
        "tenantId": TENANT_ID,
        "lifecycleEvent": event,
        "subscriptionExpirationDateTime": "2026-12-20T00:00:00Z",
    }
    item.update(overrides)
    return item


def body(*items: dict[str, object]) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def drain(queue: MessageQueue) -> list[Message]:
    """Receive, decode and delete every visible message; fails on one that does not decode."""
    out: list[Message] = []
    while batch := queue.receive(32):
        for received in batch:
            assert received.message is not None, received.error
            out.append(received.message)
            queue.delete(received)
    return out


def recomputed_users(world: World) -> set[str]:
    """Every user the recompute queue names (draining it)."""
    return {u for msg in world.messages_of(RECOMPUTE_USERS, RecomputeUsers) for u in msg.user_ids}


def sweeps(world: World) -> list[DeltaSweep]:
    """The delta sweeps queued on groups-changed (draining it)."""
    return world.messages_of(GROUPS_CHANGED, DeltaSweep)


def build_world(
    snapshot: Mapping[str, Any] | None = None,
    *,
    fake: type[FakeDirectory] = FakeDirectory,
    **settings: str,
) -> World:
    """A world over `snapshot` (the demo tenant by default); `fake` may be a FakeDirectory
    subclass that misbehaves at the port boundary (throttling, outages)."""
    clock = Clock()
    directory = fake(snapshot if snapshot is not None else demo_snapshot(), now=clock.now)
    svc = in_memory_services(
        settings_for(**settings), directory, clock=clock.now, monotonic=clock.monotonic
    )
    return World(svc, directory, clock)
