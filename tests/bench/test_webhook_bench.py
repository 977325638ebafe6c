"""bench/webhook.py times the change-notification handler only on answers that did the work: a
handler answering 401 or 500, or 202 without enqueuing the genuine groups, is fast too, and its
time used to pass the target (the status was printed, never checked)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import azure.functions as func

from bench.webhook import GROUPS, check_once, genuine_groups, request
from shared.fakes.queues import InMemoryQueue
from shared.ports.messages import GroupsChanged
from tests.python_run import ROOT


def answering(status: int, body: bytes = b"", enqueue: tuple[str, ...] = ()) -> Any:
    """A stand-in handler at the Functions boundary: what the worker would get back."""
    queue = InMemoryQueue("groups-changed")

    def handler(req: func.HttpRequest, context: object) -> func.HttpResponse:
        if enqueue:
            queue.send(
                GroupsChanged(
                    group_ids=enqueue, correlation_id="c", received_at="2026-12-04T10:00:00Z"
                )
            )
        return func.HttpResponse(body, status_code=status)

    return handler, queue


def test_an_error_answer_is_reported_not_timed_as_a_pass() -> None:
    handler, queue = answering(401)

    assert check_once(handler, request(b"{}"), queue, {GROUPS[0]}) == "answered 401"


def test_a_202_that_enqueued_less_than_the_genuine_groups_is_reported() -> None:
    handler, queue = answering(202, enqueue=(GROUPS[0],))

    problem = check_once(handler, request(b"{}"), queue, genuine_groups(10, mixed=True))

    assert problem == "enqueued 1 groups, 8 genuine"


def test_a_forged_item_must_enqueue_nothing_and_a_handshake_echo_its_token() -> None:
    handler, queue = answering(202, enqueue=(GROUPS[0],))
    assert check_once(handler, request(b"{}"), queue, set()) == "enqueued 1 groups, 0 genuine"

    handler, queue = answering(200, b"other")
    assert check_once(handler, request(b""), queue, "token") == "200 'other', 0 enqueued"

    handler, queue = answering(200, b"token")
    assert check_once(handler, request(b""), queue, "token") == ""


def test_the_benchmark_checks_the_real_handler_and_passes() -> None:
    done = subprocess.run(
        [sys.executable, "bench/webhook.py", "--seconds", "0.05"],
        cwd=ROOT, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "WRONG ANSWER" not in done.stdout
    assert "validation handshake" in done.stdout
