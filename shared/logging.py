"""Structured logging: structlog on top of the standard library, one JSON object per event.

In Azure the Functions worker attaches its handler to the root logger and forwards records to
Application Insights, so `configure_logging` does not replace handlers: it puts a
`structlog.stdlib.ProcessorFormatter` on the handlers that are there (the worker's, or pytest's)
and records keep flowing where the host expects them. With no handler at all (a CLI, a script)
it adds one that writes JSON lines to stdout.

Events have dotted names and keyword fields::

    log = get_logger(__name__)
    with bind_correlation(msg.correlation_id, user_id=msg.user_id):
        log.info("reprocess.queued", causes=len(msg.causes))

Fields bound with `bind_correlation` (context variables, so per thread and per asyncio task)
appear in every event inside the block, including plain `logging` records from libraries.

Application Insights: when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (in Azure), the first
`configure_logging` also calls `azure.monitor.opentelemetry.configure_azure_monitor()` once, which
puts an OpenTelemetry handler on the root logger; it gets the same JSON formatter, so each trace's
message is the JSON event with its ``correlation_id``. The exporter authenticates with the managed
identity named in ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (``ClientId=...;Authorization=AAD``)
because the Application Insights resource has local auth off. Without the connection string
nothing is imported or enabled: plain JSON to the existing handlers, or stdout. When the worker's
own exporter is on (``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``) this one stays off, so
nothing is exported twice. Keep personal data (display names, UPNs, mail addresses) out of
info-level events: ids only.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_formatter() -> logging.Formatter:
    """A formatter rendering structlog events and plain logging records as one JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )


CONNECTION_STRING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING: Final = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
WORKER_TELEMETRY: Final = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
_azure_monitor_lock = threading.Lock()
_azure_monitor_on = False


def azure_monitor_enabled() -> bool:
    """True once `configure_logging` has switched the Application Insights exporter on."""
    return _azure_monitor_on


def _managed_identity_client_id(authentication: str) -> tuple[bool, str | None]:
    """(Entra auth wanted, client id) from ``ClientId=<id>;Authorization=AAD``."""
    parts = {
        key.strip().lower(): value.strip()
        for key, _, value in (item.partition("=") for item in authentication.split(";"))
        if key.strip()
    }
    return parts.get("authorization", "").upper() == "AAD", parts.get("clientid") or None


def _enable_azure_monitor(env: Mapping[str, str]) -> None:
    """Call configure_azure_monitor() once per process, only with a connection string."""
    global _azure_monitor_on  # noqa: PLW0603 - one exporter per process, guarded by a lock
    connection = (env.get(CONNECTION_STRING) or "").strip()
    worker_exports = (env.get(WORKER_TELEMETRY) or "").strip().lower() == "true"
    if not connection or worker_exports:
        return
    with _azure_monitor_lock:
        if _azure_monitor_on:
            return
        # Imported here: heavy, and only needed in Azure.
        from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415

        options: dict[str, Any] = {"connection_string": connection}
        entra, client_id = _managed_identity_client_id(env.get(AUTHENTICATION_STRING) or "")
        if entra:
            from azure.identity import ManagedIdentityCredential  # noqa: PLC0415

            options["credential"] = ManagedIdentityCredential(client_id=client_id)
        configure_azure_monitor(**options)
        _azure_monitor_on = True


def configure_logging(
    handlers: Sequence[logging.Handler] | None = None,
    *,
    level: int = logging.INFO,
    env: Mapping[str, str] | None = None,
) -> None:
    """Route structlog through `logging` and format `handlers` (default: root's) as JSON.

    With no handlers anywhere, add a stdout handler to the root logger at `level`. Otherwise
    levels stay as the host configured them (host.json ``logging.logLevel``). With `handlers`
    None and ``APPLICATIONINSIGHTS_CONNECTION_STRING`` in `env` (default: the environment),
    export to Application Insights as well (see the module docstring).
    """
    if handlers is None:
        _enable_azure_monitor(os.environ if env is None else env)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    targets = list(root.handlers if handlers is None else handlers)
    if not targets:
        stdout = logging.StreamHandler(sys.stdout)
        root.addHandler(stdout)
        root.setLevel(level)
        targets = [stdout]
    formatter = json_formatter()
    for handler in targets:
        handler.setFormatter(formatter)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger over the standard logger `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def bind_correlation(correlation_id: str, **fields: Any) -> Iterator[None]:
    """Add ``correlation_id`` (and `fields`) to every event logged inside the block."""
    with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, **fields):
        yield
