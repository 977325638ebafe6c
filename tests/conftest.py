"""Shared fixtures: a real Azurite for storage tests (started once per test session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite, AzuriteEndpoints


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteEndpoints]:
    """A running Azurite on free loopback ports; its connection string is `.connection_string`."""
    with Azurite() as endpoints:
        yield endpoints
