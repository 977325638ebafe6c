"""Alert tests run on anyio's asyncio backend, like the service tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
