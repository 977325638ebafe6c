"""The end-to-end harness for tests and benchmarks: devhost's local stack (Azurite, graphsim,
the dev host running `function_app.app`), with what a process running many stacks needs from
the service itself: its process-wide services dropped between stacks, and its structured
logging routed to the event capture from the start.

devhost imports nothing of `shared` (it runs the app by its bindings); this module is where
the two meet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from devhost import stack as devhost_stack
from devhost.event_log import SERVICE_LOGGERS, EventCapture
from devhost.event_log import captured_service_logs as _captured_service_logs
from devhost.stack import (
    CLIENT_STATE,
    GRAPH_TOKEN,
    Stack,
    free_port,
    graph_requests,
    load_tenant,
    open_findings,
    service_settings,
    settle,
    user_state,
)
from shared import bootstrap
from shared.platform.logging import configure_logging

__all__ = [
    "CLIENT_STATE",
    "GRAPH_TOKEN",
    "SERVICE_LOGGERS",
    "EventCapture",
    "Stack",
    "captured_service_logs",
    "forget_services",
    "free_port",
    "graph_requests",
    "load_tenant",
    "open_findings",
    "running_stack",
    "service_settings",
    "settle",
    "user_state",
]


def forget_services() -> None:
    """Drop the app's cached `Services`: the next invocation builds them from the settings."""
    bootstrap.use(None)


@contextlib.contextmanager
def running_stack(tenant: dict[str, Any], **kwargs: Any) -> Iterator[Stack]:
    """`devhost.stack.running_stack`, each stack's app building its own services."""
    with devhost_stack.running_stack(tenant, reset_app=forget_services, **kwargs) as stack:
        yield stack


@contextlib.contextmanager
def captured_service_logs() -> Iterator[EventCapture]:
    """`devhost.event_log.captured_service_logs`, formatted as JSON before any services exist."""
    with _captured_service_logs() as capture:
        configure_logging([capture])
        yield capture
