"""Shared fixtures: a real Azurite for storage tests (started once per test session), and an
empty table in the in-memory fake and in Azurite alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite, AzuriteEndpoints
from shared.adapters.tables import AzureTable
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import EntityStore


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteEndpoints]:
    """A running Azurite on free loopback ports; its connection string is `.connection_string`."""
    with Azurite() as endpoints:
        yield endpoints


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> EntityStore:
    """A new, empty table: the in-memory fake, then one in Azurite (a test runs on both)."""
    name = f"t{uuid.uuid4().hex[:16]}"
    if request.param == "memory":
        return InMemoryTable(name)
    azurite: AzuriteEndpoints = request.getfixturevalue("azurite")
    return AzureTable.from_connection(azurite.connection_string, name)
