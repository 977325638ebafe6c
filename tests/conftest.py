"""Shared fixtures: a real Azurite for storage tests (started once per test session), and an
empty table in the in-memory fake and in Azurite alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

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
def new_store(request: pytest.FixtureRequest) -> Callable[[], EntityStore]:
    """Makes new, empty tables: in the in-memory fake, then in Azurite (a test runs on both)."""
    if request.param == "memory":
        return lambda: InMemoryTable(_table_name())
    azurite: AzuriteEndpoints = request.getfixturevalue("azurite")
    return lambda: AzureTable.from_connection(azurite.connection_string, _table_name())


@pytest.fixture
def store(new_store: Callable[[], EntityStore]) -> EntityStore:
    """A new, empty table: the in-memory fake, then one in Azurite (a test runs on both)."""
    return new_store()


def _table_name() -> str:
    return f"t{uuid.uuid4().hex[:16]}"
