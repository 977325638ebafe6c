"""The demo's event capture: the service's JSON events, and plain records before the app has
configured its logging (devhost does not configure the service's logging itself)."""

from __future__ import annotations

import json
import logging

from devhost.event_log import EventCapture, captured_service_logs


def test_a_plain_record_becomes_its_event_with_its_fields() -> None:
    with captured_service_logs() as capture:
        logging.getLogger("shared.service.x").info("users.recomputed", extra={"users": 3})
        logging.getLogger("elsewhere").info("not.ours")

    [event] = capture.events
    assert event["event"] == "users.recomputed"
    assert event["users"] == 3
    assert event["level"] == "info"
    assert event["logger"] == "shared.service.x"
    assert event["timestamp"]


def test_a_json_formatted_record_is_read_as_json() -> None:
    capture = EventCapture()
    capture.setFormatter(logging.Formatter('{"event": "%(message)s", "users": 2}'))
    record = logging.makeLogRecord(
        {"name": "functions.pipeline", "msg": "users.recomputed", "levelno": logging.INFO}
    )
    capture.handle(record)

    assert capture.named("users.recomputed") == [
        json.loads('{"event": "users.recomputed", "users": 2, "logger": "functions.pipeline"}')
    ]
