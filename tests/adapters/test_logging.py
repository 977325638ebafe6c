"""Structured logging: JSON events through the standard library, with a bound correlation id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.platform.logging import bind_correlation, configure_logging, get_logger

NAME = "tests.adapters.logging"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Log output of a handler on the root logger, configured by configure_logging."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger(NAME).setLevel(logging.INFO)
    configure_logging([handler])
    yield stream
    root.removeHandler(handler)
    logging.getLogger(NAME).setLevel(logging.NOTSET)
    structlog.reset_defaults()


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_bound_correlation_id_appears_in_the_json_of_each_event(lines: io.StringIO) -> None:
    log = get_logger(NAME)

    with bind_correlation("corr-42", user_id="u1"):
        log.info("reprocess.queued", causes=2)

    [event] = events(lines)
    assert event["event"] == "reprocess.queued"
    assert event["correlation_id"] == "corr-42"
    assert event["user_id"] == "u1"
    assert event["causes"] == 2
    assert event["level"] == "info"


def test_plain_logging_records_inside_the_block_carry_the_correlation_id_too(
    lines: io.StringIO,
) -> None:
    with bind_correlation("corr-7"):
        logging.getLogger(NAME).warning("retrying %s", "graph")

    [event] = events(lines)
    assert event["event"] == "retrying graph"
    assert event["correlation_id"] == "corr-7"


def test_the_correlation_id_is_gone_after_the_block(lines: io.StringIO) -> None:
    log = get_logger(NAME)
    with bind_correlation("corr-1"):
        log.info("inside")

    log.info("outside")

    assert [e.get("correlation_id") for e in events(lines)] == ["corr-1", None]


def test_without_any_handler_events_go_to_stdout_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        configure_logging()
        added = root.handlers[:]
        get_logger(NAME).info("sweep.started", partitions=3)
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)
        structlog.reset_defaults()

    [line] = capsys.readouterr().out.splitlines()
    assert len(added) == 1
    assert json.loads(line)["partitions"] == 3


def test_fields_named_like_logging_attributes_and_positional_args_do_not_break_logging(
    lines: io.StringIO,
) -> None:
    """`logging` refuses extra keys it uses itself (name, module ...): they get a trailing _."""
    get_logger(NAME).info("sync.%s", "watched", name="n", module="m", user_id="u1")

    [event] = events(lines)
    assert event["event"] == "sync.watched"
    assert (event["name_"], event["module_"], event["user_id"]) == ("n", "m", "u1")
