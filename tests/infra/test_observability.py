"""Logging in Azure: the Application Insights exporter only with a connection string, and
info-level events that carry the correlation id (and ids, not names)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import bind_correlation, configure_logging, get_logger
from tests.infra.bicep import ROOT

NAME = "tests.infra.observability"


@pytest.fixture
def handler() -> Iterator[logging.StreamHandler[io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger(NAME).setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    logging.getLogger(NAME).setLevel(logging.NOTSET)
    structlog.reset_defaults()


def test_without_a_connection_string_the_exporter_is_neither_imported_nor_enabled() -> None:
    # A fresh interpreter, so no other test has imported anything yet.
    code = (
        "import sys, logging\n"
        "from shared.logging import configure_logging, azure_monitor_enabled\n"
        "env = {'APPLICATIONINSIGHTS_AUTHENTICATION_STRING': 'Authorization=AAD'}\n"
        "configure_logging(env=env)\n"
        "prefixes = ('azure.monitor', 'opentelemetry')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(prefixes))\n"
        "print(azure_monitor_enabled(), loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False []"


def _in_fresh_process(env: dict[str, str]) -> dict[str, object]:
    """Configure logging twice in a fresh interpreter (the exporter is once per process), with
    Azure Monitor's configure function replaced by a recorder: a fake at the SDK boundary."""
    code = (
        "import json, sys\n"
        "import azure.monitor.opentelemetry as azure_monitor\n"
        "calls = []\n"
        "azure_monitor.configure_azure_monitor = lambda **kw: calls.append(kw)\n"
        "from shared.logging import azure_monitor_enabled, configure_logging\n"
        "env = json.loads(sys.argv[1])\n"
        "configure_logging(env=env)\n"
        "configure_logging(env=env)\n"
        "print(json.dumps({'enabled': azure_monitor_enabled(), 'calls': [\n"
        "    {'connection_string': c.get('connection_string'),\n"
        "     'credential': type(c.get('credential')).__name__} for c in calls]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(env)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_with_a_connection_string_it_is_configured_once_with_the_identity() -> None:
    client_id = "11111111-2222-4333-8444-555555555555"
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=0;IngestionEndpoint=https://x/",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={client_id};Authorization=AAD",
    }

    result = _in_fresh_process(env)

    assert result["enabled"] is True
    assert result["calls"] == [
        {
            "connection_string": env["APPLICATIONINSIGHTS_CONNECTION_STRING"],
            "credential": "ManagedIdentityCredential",
        }
    ]


def test_the_worker_exporter_setting_keeps_ours_off() -> None:
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=0",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
    }

    result = _in_fresh_process(env)

    assert result == {"enabled": False, "calls": []}


def test_info_events_carry_the_correlation_id_as_json(
    handler: logging.StreamHandler[io.StringIO],
) -> None:
    configure_logging([handler], env={})
    with bind_correlation("corr-99"):
        get_logger(NAME).info("reprocess.queued", user_id="u-1")
        logging.getLogger(NAME).info("plain %s", "record")

    events = [json.loads(line) for line in handler.stream.getvalue().splitlines()]
    assert [e["level"] for e in events] == ["info", "info"]
    assert {e["correlation_id"] for e in events} == {"corr-99"}


def test_service_log_calls_carry_no_names_or_upns() -> None:
    """Ids only at info level and above: no display names, UPNs or mail addresses."""
    import re

    personal = re.compile(r"display_?name|user_?principal_?name|\bupn\b|mail|\.name\b", re.I)
    for path in sorted((ROOT / "shared" / "service").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"log\.(?:info|warning|error|exception)\((.*?)\)\n", text, re.S):
            assert not personal.search(call.group(1)), f"{path.name}: {call.group(0)[:120]}"
