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
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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


def configure_logging(
    handlers: Sequence[logging.Handler] | None = None, *, level: int = logging.INFO
) -> None:
    """Route structlog through `logging` and format `handlers` (default: root's) as JSON.

    With no handlers anywhere, add a stdout handler to the root logger at `level`. Otherwise
    levels stay as the host configured them (host.json ``logging.logLevel``).
    """
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
