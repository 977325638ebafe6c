"""devhost provisions Azurite from the Bicep template's own name lists: they are read whole."""

from __future__ import annotations

from devhost.provision import storage_names
from shared.ports.blobs import REPORTS_CONTAINER
from shared.ports.queues import QUEUE_NAMES, poison_name
from shared.ports.tables import TABLE_NAMES


def test_the_names_read_from_storage_bicep_are_the_service_contracts() -> None:
    names = storage_names()

    assert sorted(names.queues) == sorted([*QUEUE_NAMES, *map(poison_name, QUEUE_NAMES)])
    assert sorted(names.tables) == sorted(TABLE_NAMES)
    assert names.containers == (REPORTS_CONTAINER,)
