"""A queue message whose job fails: the failure is a trace under the message's correlation id,
as the poison-queue runbook (docs/operations.md) searches for it. The worker hands the
exception to the host, whose failure record carries the invocation, not the correlation id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.functions.queue import QueueMessage

from shared.bootstrap import use
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import JSON, DirectoryError
from shared.ports.messages import MessageError, RecomputeUsers, ReprocessUser, SyncCompleted
from shared.ports.queues import GROUPS_CHANGED
from tests.demo_tenant import IRVIN
from tests.functions.test_handlers import UnreachableQueue, call, queued
from tests.functions.test_webhook_intake import events  # noqa: F401 - the log events fixture
from tests.infra.bicep import ROOT
from tests.service.world import build_world


class ForbiddenReads(FakeDirectory):
    """The fake Graph, refusing the user reads: the app lost User.Read.All."""

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        raise DirectoryError(403, "Authorization_RequestDenied", "Insufficient privileges")


def test_a_failed_recompute_is_logged_under_its_correlation_id(
    events: Callable[[], list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    msg = RecomputeUsers(user_ids=(IRVIN,), reason="t", correlation_id="corr-failed-1")
    use(build_world(fake=ForbiddenReads).svc)
    try:
        with pytest.raises(DirectoryError):
            call("recompute_users", queued(msg, dequeue_count=3))
    finally:
        use(None)

    [failed] = [e for e in events() if e["event"] == "queue.message_failed"]
    assert failed["correlation_id"] == "corr-failed-1"
    assert failed["levelname"] == "ERROR"
    assert failed["message_type"] == "RecomputeUsers"
    assert failed["function"] == "recompute_users"
    assert "Insufficient privileges" in failed["error"]


class UnavailableWrites(FakeDirectory):
    """The fake Graph, answering the reprocess call with 503: the host retries the message."""

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        raise DirectoryError(503, "serviceNotAvailable", "Service unavailable")


def test_a_failed_reprocess_names_its_user_in_every_trace(
    events: Callable[[], list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    """A run's reprocess messages share the run's correlation id (one per user of the run), so
    the poison runbook's search by correlation id finds every user's traces: the failure must say
    whose reprocess failed, as the `reprocess.*` events do, and so must every other trace of it
    (a Graph retry, a throttled requeue)."""
    msg = ReprocessUser(user_id=IRVIN, causes=(), reason="manual", correlation_id="corr-run-7")
    use(build_world(fake=UnavailableWrites, LICENSE_GUARD_MODE="act").svc)
    try:
        with pytest.raises(DirectoryError):
            call("reprocess_user", queued(msg, dequeue_count=2))
    finally:
        use(None)

    [failed] = [e for e in events() if e["event"] == "queue.message_failed"]
    assert failed["correlation_id"] == "corr-run-7"
    assert failed["message_type"] == "ReprocessUser"
    assert failed["user_id"] == IRVIN


def test_a_failed_sync_completed_is_logged_under_its_correlation_id(
    events: Callable[[], list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    """sync-completed-poison is one of the runbook's poison queues: its failures are found by
    the message's correlation id, as every other queue's are."""
    world = build_world()
    world.svc.queues = replace(world.svc.queues, groups_changed=UnreachableQueue(GROUPS_CHANGED))
    msg = SyncCompleted(
        tenant_id=world.svc.settings.tenant_id,
        completed_at="2026-11-24T08:30:00Z",
        source="entra-connect",
        correlation_id="sync-run-9",
    )
    use(world.svc)
    try:
        with pytest.raises(ServiceRequestError):
            call("sync_completed", queued(msg, dequeue_count=1))
    finally:
        use(None)

    [failed] = [e for e in events() if e["event"] == "queue.message_failed"]
    assert failed["correlation_id"] == "sync-run-9"
    assert failed["message_type"] == "SyncCompleted"
    assert failed["function"] == "sync_completed"
    assert "connection refused" in failed["error"]


def test_a_message_that_cannot_be_read_is_logged_under_its_correlation_id(
    events: Callable[[], list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    """A message no handler can read (an on-premises sender's mistake, a newer version during
    an upgrade) fails every try and lands in -poison like any other; the runbook's search by
    its correlationId must find why."""
    body = orjson.dumps(
        {
            "type": "SyncCompleted",
            "version": 2,
            "tenantId": "not-a-guid",
            "completedAt": "2026-11-24T08:30:00Z",
            "source": "entra-connect",
            "correlationId": "sync-run-unreadable",
        }
    )
    use(build_world().svc)
    try:
        with pytest.raises(MessageError):
            call("sync_completed", QueueMessage(id="m-2", body=body, dequeue_count=4))
    finally:
        use(None)

    [failed] = [e for e in events() if e["event"] == "queue.message_failed"]
    assert failed["correlation_id"] == "sync-run-unreadable"
    assert failed["message_type"] == "SyncCompleted"
    assert failed["function"] == "sync_completed"
    assert "version" in failed["error"]


def test_a_message_that_is_not_even_json_is_logged_too(
    events: Callable[[], list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    use(build_world().svc)
    try:
        with pytest.raises(MessageError):
            call("group_changes", QueueMessage(id="m-3", body=b"sync done", dequeue_count=1))
    finally:
        use(None)

    [failed] = [e for e in events() if e["event"] == "queue.message_failed"]
    assert failed["function"] == "group_changes"
    assert "not valid JSON" in failed["error"]
    assert "correlation_id" not in failed


_FRESH_WORKER = """
import io, json, logging, sys
from azure.functions.queue import QueueMessage
from shared.ports.messages import MessageError
from tests.functions.test_handlers import call

# A new worker: its handler on the root logger, no services built yet, no settings at all.
out = io.StringIO()
logging.getLogger().addHandler(logging.StreamHandler(out))
logging.getLogger().setLevel(logging.INFO)
try:
    call("group_changes", QueueMessage(id="m-4", body=b'{"type": "Nope", "correlationId": "c-9"}'))
except MessageError:
    pass
print(json.dumps({"records": out.getvalue().splitlines()}))
"""


def test_a_new_workers_first_unreadable_message_is_logged_through_logging() -> None:
    """Nothing has asked for services yet (that is where logging gets configured), so the
    failure must configure it: else structlog prints its default text to stdout, past the
    worker's handler and the Application Insights exporter."""
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_WORKER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    records = json.loads(done.stdout.strip().splitlines()[-1])["records"]

    [failed] = [json.loads(r) for r in records if "queue.message_failed" in r]
    assert failed["correlation_id"] == "c-9"
    assert failed["function"] == "group_changes"
