"""Reconciliation fixtures: the service-layer world (demo tenant, in-memory everything) with
small pages, and an in-memory blob store on the same clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest

from shared.fakes.blobs import InMemoryBlobStore
from shared.fakes.directory import FakeDirectory
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.run_state import Options, ReconcileResult
from tests.demo_tenant import E3_BASE
from tests.reliability.harness import CrashRecorder, SimulatedCrash
from tests.service.world import World, build_world

PAGE = 5
"""Users per page: the 23 demo users make five pages."""


class SmallPages(FakeDirectory):
    def __init__(
        self, snapshot: Mapping[str, Any], *, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(snapshot, now=now, page_size=PAGE)


class Nightly:
    """A world plus the blob store the reconciliation writes to."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.blobs = InMemoryBlobStore(now=world.clock.now)

    @property
    def directory(self) -> FakeDirectory:
        return self.world.directory

    async def run(self, **options: Any) -> ReconcileResult:
        return await reconcile_nightly(self.world.svc, self.blobs, Options(**options))


class Interrupted(Exception):
    """The process died mid-run."""


def alerting_nightly() -> Nightly:
    """A nightly with alert mail set up."""
    return Nightly(
        build_world(
            fake=SmallPages,
            ALERT_SENDER="megan.bowen@contoso.com",
            ALERT_RECIPIENTS="it-licensing@contoso.com",
        )
    )


async def mailbox_lost_after_a_baseline() -> Nightly:
    """A nightly with alert mail set up, after its baseline run and a day on, in which Alannah
    Shaw left the E3 Base group (the path of her mailbox)."""
    nightly = alerting_nightly()
    await nightly.run()  # the baseline
    nightly.world.clock.advance(24 * 3600)
    users = nightly.directory.users.values()
    alannah = next(u["id"] for u in users if u["displayName"] == "Alannah Shaw")
    nightly.directory.remove_member(E3_BASE, alannah)
    return nightly


def user_id(nightly: Nightly, name: str) -> str:
    """The id of the user with this display name."""
    return next(u["id"] for u in nightly.directory.users.values() if u["displayName"] == name)


def open_codes(nightly: Nightly, subject: str) -> list[str]:
    """The codes of the subject's open findings, sorted."""
    return sorted(
        str(e.fields["code"])
        for e in nightly.world.svc.tables.findings.query_all()
        if str(e.fields["key"]).split("|", 1)[0] == subject and not e.fields.get("resolvedAt")
    )


async def killed_after_two_pages(nightly: Nightly, **options: Any) -> None:
    """A run that dies reading the third page of users (checkpointed after the second)."""
    calls = {"n": 0}

    def dies_on_the_third_page(_link: str | None) -> Exception | None:
        calls["n"] += 1
        return Interrupted() if calls["n"] == 3 else None

    nightly.directory.users_page_fault = dies_on_the_third_page
    with pytest.raises(Interrupted):
        await nightly.run(**options)
    nightly.directory.users_page_fault = None


async def crashed_at(nightly: Nightly, point: str) -> None:
    """A run that dies at the named crash point (the host recycled there)."""
    nightly.world.svc.crash_points = CrashRecorder([], crash_at=point)
    with pytest.raises(SimulatedCrash):
        await nightly.run()


@pytest.fixture
def nightly() -> Nightly:
    return Nightly(build_world(fake=SmallPages))


@pytest.fixture
def act_nightly() -> Nightly:
    return Nightly(build_world(fake=SmallPages, LICENSE_GUARD_MODE="act"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
