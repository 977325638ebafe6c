"""Structured logging: structlog on top of the standard library, one JSON object per event.

In Azure the Functions worker attaches its handler to the root logger and forwards records to
the host, so `configure_logging` does not replace handlers: it puts a
`structlog.stdlib.ProcessorFormatter` on the handlers that are there (the worker's, the
OpenTelemetry exporter's, or pytest's) and records keep flowing where the host expects them. With
no handler at all (a CLI, a script) it adds one that writes JSON lines to stdout.

Events have dotted names and keyword fields::

    log = get_logger(__name__)
    with bind_correlation(msg.correlation_id, user_id=msg.user_id):
        log.info("reprocess.queued", causes=len(msg.causes))

structlog hands each event to `logging` as a plain record: the message is the event name and
every field (``event`` included) is an attribute of the record (``extra``), so any handler sees
the fields, and the OpenTelemetry exporter sends them as attributes (Application Insights
``customDimensions``). Fields bound with `bind_correlation` or `bind_invocation` (context
variables, so per thread and per asyncio task) are added to every record inside the block,
including plain `logging` records from libraries. A field whose name the standard library
reserves (``name``, ``module``, ``args`` ...) gets a trailing underscore (``name_``).

Application Insights: when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (in Azure), the first
`configure_logging` also switches the exporter on (shared/platform/telemetry.py; why the app exports
and not the host: docs/operations.md "Telemetry"). Its handler gets the same JSON formatter, so
each trace's message is the JSON event. Keep personal data (display names, UPNs, mail addresses)
out of info-level events: ids only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol, TextIO

import structlog

from shared.platform import telemetry as azure_monitor
from shared.platform.telemetry import AUTHENTICATION_STRING, CONNECTION_STRING, WORKER_TELEMETRY

__all__ = [
    "AUTHENTICATION_STRING",
    "CONNECTION_STRING",
    "WORKER_TELEMETRY",
    "azure_monitor_enabled",
    "bind_correlation",
    "bind_invocation",
    "configure_logging",
    "get_logger",
    "json_formatter",
]

_RESERVED: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
PER_REQUEST_LOGGERS: Final = (
    "httpx",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.monitor.opentelemetry.exporter",
)
"""Libraries that log every HTTP request at INFO: httpx its full URL (an alert channel's secret
URL, a mailbox in a Graph path), azure-core each storage request and answer, the exporter's own
posts included, and the exporter "Transmission succeeded" after each post: those would feed
themselves, each the next post's item. The worker runs the root logger at INFO, so they are
raised to WARNING."""
_PASSED_TO_LOGGING: Final = ("exc_info", "stack_info", "stacklevel")


def _to_logging_kwargs(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """The last structlog processor: the event becomes `logging` kwargs, its fields ``extra``."""
    kwargs = {key: event_dict.pop(key) for key in _PASSED_TO_LOGGING if key in event_dict}
    extra = {(f"{key}_" if key in _RESERVED else key): value for key, value in event_dict.items()}
    return {"msg": str(event_dict.get("event", "")), "extra": extra, **kwargs}


class _ContextFields(logging.Filter):
    """Adds the bound context variables (correlation_id, invocation_id ...) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in structlog.contextvars.get_contextvars().items():
            name = f"{key}_" if key in _RESERVED else key
            if name not in record.__dict__:
                setattr(record, name, value)
        return True


_CONTEXT_FIELDS: Final = _ContextFields()

_FORMATTER_CHAIN: list[structlog.typing.Processor] = [
    structlog.stdlib.ExtraAdder(),
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_formatter() -> logging.Formatter:
    """A formatter rendering each record (its message and extra fields) as one JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FORMATTER_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
    )


def azure_monitor_enabled() -> bool:
    """True once `configure_logging` has switched the Application Insights exporter on."""
    return azure_monitor.enabled()


def configure_logging(
    handlers: Sequence[logging.Handler] | None = None,
    *,
    level: int = logging.INFO,
    env: Mapping[str, str] | None = None,
) -> None:
    """Route structlog through `logging` and format `handlers` (default: root's) as JSON.

    With no handlers anywhere, add a stdout handler to the root logger at `level`. Otherwise
    levels stay as the host configured them (host.json ``logging.logLevel``), but for the
    `PER_REQUEST_LOGGERS`, which log at WARNING and above only. With `handlers`
    None and ``APPLICATIONINSIGHTS_CONNECTION_STRING`` in `env` (default: the environment),
    export to Application Insights as well (see the module docstring).
    """
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if handlers is None:
        azure_monitor.enable(os.environ if env is None else env)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.contextvars.merge_contextvars,
            _to_logging_kwargs,
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
        if _CONTEXT_FIELDS not in handler.filters:
            handler.addFilter(_CONTEXT_FIELDS)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger over the standard logger `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def bind_correlation(correlation_id: str, **fields: Any) -> Iterator[None]:
    """Add ``correlation_id`` (and `fields`) to every event logged inside the block."""
    with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, **fields):
        yield


class _Invocation(Protocol):
    """What `bind_invocation` reads from ``azure.functions.Context``."""

    @property
    def invocation_id(self) -> str: ...

    @property
    def function_name(self) -> str: ...


def bind_invocation(context: _Invocation) -> None:
    """First line of every handler: every event of this invocation carries its
    ``invocation_id`` (and ``function``). Clears what an earlier invocation bound, since the
    worker reuses threads for synchronous handlers."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        invocation_id=context.invocation_id, function=context.function_name
    )


def configure_console(stream: TextIO) -> None:
    """structlog's readable lines on `stream` (a CLI's stderr), stamped in UTC, ISO 8601, as
    the JSON logs are: structlog's default stamp is local time without a zone."""
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            stamp if isinstance(p, structlog.processors.TimeStamper) else p
            for p in structlog.get_config()["processors"]
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
