"""Service-layer fixtures; the world they build is in `tests.service.world`."""

from __future__ import annotations

import pytest

from tests.service.world import World, build_world


@pytest.fixture
def world() -> World:
    """Observe mode (the default): nothing is ever written to Graph."""
    return build_world()


@pytest.fixture
def act_world() -> World:
    """Act mode, no allow-list, writes enabled."""
    return build_world(LICENSE_GUARD_MODE="act")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
