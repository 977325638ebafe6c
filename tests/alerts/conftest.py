"""Alert tests run on anyio's asyncio backend, like the service tests."""

from __future__ import annotations

import pytest

from tests.alerts.receiver import receiver  # noqa: F401 - the local HTTP receiver fixture


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
