"""A live command's standard output is its document alone: `license-guard snapshot >
tenant.json`, `report paths > paths.csv` and `reconcile --format json | jq` must parse, even
when the service's code logs (a retried Graph connection, the run's own events). The commands
run as an admin runs them, in a child process, against graphsim and Azurite on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devhost.azurite import AzuriteEndpoints, wipe_storage
from devhost.stack import GRAPH_TOKEN, load_tenant
from graphsim.server import serve_in_thread
from tests.python_run import run_module
from tests.service.world import BASE_ENV


@pytest.fixture
def graph() -> Iterator[str]:
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        yield url


def license_guard(graph: str, *args: str, storage: str = "") -> tuple[str, str]:
    env = {**os.environ, **BASE_ENV, "AzureWebJobsStorage": storage} if storage else None
    done = run_module(
        "shared", *args, "--graph-base-url", graph, "--token", GRAPH_TOKEN, "--quiet",
        env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def reset_the_next_connection(graph: str) -> None:
    """graphsim drops the next request's connection: the Graph client retries it, and logs so."""
    root = graph.removesuffix("/v1.0")
    httpx.put(f"{root}/_sim/faults", json={"next": ["reset"]}).raise_for_status()


def test_a_snapshot_on_standard_output_is_json_when_graph_drops_a_connection(graph: str) -> None:
    reset_the_next_connection(graph)

    out, err = license_guard(graph, "snapshot")

    assert "graph.transport_retry" in err
    assert len(json.loads(out)["users"]) == len(load_tenant()["users"])


def test_reconcile_json_is_the_document_alone(graph: str, azurite: AzuriteEndpoints) -> None:
    wipe_storage(azurite.connection_string, containers=True)

    out, err = license_guard(
        graph, "reconcile", "--format", "json", storage=azurite.connection_string
    )

    assert "reconcile.finished" in err
    assert json.loads(out)["status"] == "done"


def test_the_log_lines_on_stderr_are_stamped_in_utc_as_the_service_logs(graph: str) -> None:
    """An admin matches them with the app's logs (Application Insights, UTC): a local time
    without a zone was off by the admin's offset."""
    reset_the_next_connection(graph)
    env = {**os.environ, "TZ": "America/New_York"}

    done = run_module(
        "shared", "snapshot", "--graph-base-url", graph, "--token", GRAPH_TOKEN, "--quiet",
        env=env, timeout=120,
    )  # fmt: skip
    [retry] = [line for line in done.stderr.splitlines() if "graph.transport_retry" in line]

    stamp = datetime.fromisoformat(retry.split()[0])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
