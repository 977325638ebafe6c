"""Logging in Azure: the Application Insights exporter only with a connection string, every
structlog field exported as a log attribute (customDimension) with no warning per event, each
invocation's id bound, and info-level events that carry ids, not names.

The exporter tests run the real `configure_azure_monitor()` in a fresh interpreter (it sets
process-wide OpenTelemetry providers) and read what it exports through an in-memory exporter."""

from __future__ import annotations

import ast
import inspect
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
import structlog

from shared.platform.logging import (
    CONNECTION_STRING,
    bind_correlation,
    configure_logging,
    get_logger,
)
from shared.ports.directory import DirectoryError
from tests.infra.bicep import ROOT
from tests.infra.test_infra_crosscheck import app_settings
from tests.invocation import indexed_functions

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
        "from shared.platform.logging import configure_logging, azure_monitor_enabled\n"
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


_EXPORT_PROBE = """
import json, logging, os, sys, datetime
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import (
    azure_monitor_enabled, bind_correlation, bind_invocation, configure_logging, get_logger,
)
from tests.invocation import invocation_context

env = json.loads(sys.argv[1])
configure_logging(env=env)
configure_logging(env=env)  # a second call must not add a second exporter

# Observe what the real pipeline exports: an in-memory exporter on the LoggerProvider that
# configure_azure_monitor() built and registered (OpenTelemetry SDK public API).
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
exported = InMemoryLogRecordExporter()
get_logger_provider().add_log_record_processor(SimpleLogRecordProcessor(exported))
from opentelemetry.instrumentation.logging.handler import LoggingHandler
otel_handlers = [h for h in logging.getLogger().handlers if isinstance(h, LoggingHandler)]

log = get_logger("tests.infra.observability")
bind_invocation(invocation_context("recompute_users", "inv-1"))
with bind_correlation("corr-1", group_id="g-1"):
    for n in range(5):
        log.info(
            "reprocess.queued", causes=n, ok=True, skus=["a", "b"], detail={"k": 1},
            when=datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc), nothing=None,
            name="reserved by logging",
        )
    logging.getLogger("some.library").warning("plain %s", "record")
bind_invocation(invocation_context("sync_watch", "inv-2"))
log.info("sync.watched")

records = [getattr(r, "log_record", r) for r in exported.get_finished_logs()]
print(json.dumps({
    "enabled": azure_monitor_enabled(),
    "otel_handlers": len(otel_handlers),
    "logs": [{"body": r.body, "attributes": dict(r.attributes or {})} for r in records],
}))
sys.stdout.flush()
os._exit(0)  # skip the exit-time flush: nothing may leave the machine
"""

APP_INSIGHTS = {
    # Loopback ingestion and live-metrics endpoints: configure_azure_monitor() is real, but
    # nothing is sent.
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
    ),
}


def _run(code: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Run `code` in a fresh interpreter; (its last stdout line as JSON, its stderr)."""
    with tempfile.TemporaryDirectory(prefix="exporter-probe-") as temp:
        return _run_in(code, env, temp)


def _run_in(code: str, env: dict[str, str], temp: str) -> tuple[dict[str, Any], str]:
    process_env = {
        **os.environ,
        # The exporter keeps what it could not send under the temporary directory, keyed by
        # the instrumentation key, and sends it with a later process's posts: one probe's
        # failed items would reach the next probe's ingestion. Each probe has its own.
        "TMPDIR": temp,
        # The distro's default resource detectors include azure_vm, which calls the instance
        # metadata endpoint; the OpenTelemetry one reads only OTEL_* variables.
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
        # The distro samples spans (5 traces a second, adaptive: a process's first span is kept
        # about half the time), so a probe would see a span only sometimes, and a check that a
        # span is absent could pass by chance. Every span is kept here.
        "OTEL_TRACES_SAMPLER": "always_on",
        # The exporter's own usage telemetry (statsbeat) goes to a Microsoft endpoint of its own.
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(env)],
        cwd=ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, done.stderr


# One xdist worker runs the module, so the exporter probe (a subprocess, module-scoped) runs once.
pytestmark = pytest.mark.xdist_group("observability-probe")


@pytest.fixture(scope="module")
def exported() -> tuple[dict[str, Any], str]:
    return _run(_EXPORT_PROBE, APP_INSIGHTS)


def test_with_a_connection_string_one_exporter_is_on(exported: tuple[dict[str, Any], str]) -> None:
    result, _ = exported

    assert result["enabled"] is True
    assert result["otel_handlers"] == 1  # configured once, however often configure_logging runs


def test_every_structlog_field_is_an_attribute_and_structlog_internals_are_not(
    exported: tuple[dict[str, Any], str],
) -> None:
    """Attributes of an OpenTelemetry log record are what Application Insights stores as
    customDimensions (azure-monitor-opentelemetry exporter, `_convert_log_to_envelope`)."""
    result, _ = exported
    first = result["logs"][0]
    attributes = first["attributes"]

    assert {
        "event": "reprocess.queued",
        "correlation_id": "corr-1",
        "group_id": "g-1",
        "invocation_id": "inv-1",
        "function": "recompute_users",
        "causes": 0,
        "ok": True,
        "skus": '["a","b"]',
        "detail": '{"k":1}',
        "when": "2026-01-02 00:00:00+00:00",
        "name_": "reserved by logging",
    }.items() <= attributes.items()
    assert "nothing" not in attributes  # None is left out, not sent as "None"
    assert not [key for key in attributes if key.startswith("_")]  # no _logger, _name, _record
    assert json.loads(first["body"])["event"] == "reprocess.queued"  # the message is the JSON


def test_plain_library_records_carry_the_bound_ids_too(
    exported: tuple[dict[str, Any], str],
) -> None:
    result, _ = exported
    [plain] = [log for log in result["logs"] if "plain record" in log["body"]]

    assert plain["attributes"]["correlation_id"] == "corr-1"
    assert plain["attributes"]["invocation_id"] == "inv-1"


def test_each_invocation_binds_its_own_id_and_drops_the_previous_fields(
    exported: tuple[dict[str, Any], str],
) -> None:
    result, _ = exported
    last = result["logs"][-1]["attributes"]

    assert last["invocation_id"] == "inv-2"
    assert last["function"] == "sync_watch"
    assert "correlation_id" not in last
    assert "group_id" not in last


def test_no_warning_is_printed_for_any_event(exported: tuple[dict[str, Any], str]) -> None:
    """The SDK warns ("Invalid type ... for attribute ...") for each non-primitive attribute of
    each event; five events with a list, a dict, a datetime and None must print none."""
    result, stderr = exported

    assert len(result["logs"]) == 7
    assert "Invalid type" not in stderr
    assert "attribute" not in stderr.lower()
    assert len(stderr.splitlines()) < 5  # start-up notices at most, nothing per event


_HTTP_PROBE = """
import asyncio, http.server, json, logging, os, sys, threading
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import configure_logging
configure_logging(env=json.loads(sys.argv[1]))
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
exported = InMemoryLogRecordExporter()
get_logger_provider().add_log_record_processor(SimpleLogRecordProcessor(exported))
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
spans = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(spans))

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201 if self.command == "PUT" else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_PUT = do_POST
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"

# an alert channel's post (httpx, as the Graph client's calls): the URL is the channel's secret
from shared.service.alerts.channels import http_post
channel = base + "/services/T0/B0/CHANNEL-SECRET?sig=CHANNEL-SECRET"  # Slack's, Teams' secret
status, _ = asyncio.run(http_post(channel, b"{}", {"Content-Type": "application/json"}))
# a storage call (the Azure SDK's pipeline)
from azure.storage.queue import QueueClient
queue = QueueClient.from_connection_string(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    f"QueueEndpoint={base}/devstoreaccount1;", "recompute-users")
queue.create_queue()

bodies = [str(getattr(r, "log_record", r).body) for r in exported.get_finished_logs()]
urls = [str(dict(span.attributes or {})) for span in spans.get_finished_spans()]
print(json.dumps({"status": status, "bodies": bodies, "spans": urls}))
sys.stdout.flush()
os._exit(0)  # skip the exit-time flush: nothing may leave the machine
"""


def test_the_libraries_per_request_logs_are_not_exported() -> None:
    """The worker runs the root logger at INFO, where httpx logs every request's full URL and
    azure-core every storage request and answer: each would be an Application Insights trace,
    and httpx's carry secrets (an alert channel's URL, kept in Key Vault) and UPNs in Graph
    paths (/users/{sender}/messages)."""
    result, _ = _run(_HTTP_PROBE, APP_INSIGHTS)

    assert result["status"] == 202
    assert not [body for body in result["bodies"] if "CHANNEL-SECRET" in body]
    assert not [body for body in result["bodies"] if "HTTP Request" in body]
    assert not [body for body in result["bodies"] if "Request URL" in body]


def test_an_alert_channel_post_is_no_dependency_record() -> None:
    """The httpx instrumentation records each request's URL as a dependency; it redacts a
    ``sig`` query value (Teams) but not a path, and a Slack hook's path is its secret."""
    result, _ = _run(_HTTP_PROBE, APP_INSIGHTS)

    assert result["status"] == 202
    assert any("recompute-users" in span for span in result["spans"])  # storage calls still are
    assert not [span for span in result["spans"] if "CHANNEL-SECRET" in span]


_WORKER_PROBE = """
import json, logging, os, sys
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import configure_logging, get_logger
configure_logging(env=json.loads(sys.argv[1]))
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
exported = InMemoryLogRecordExporter()
get_logger_provider().add_log_record_processor(SimpleLogRecordProcessor(exported))

# What the worker logs itself, on loggers that propagate to the root (where our exporter is):
# a line per invocation (dispatcher._handle__invocation_request), the SDK's notes.
worker = logging.getLogger("azure_functions_worker")
worker.info("Received FunctionInvocationRequest, request ID: r-1, function ID: f-1, "
            "function name: recompute_users, invocation ID: inv-1, function type: sync")
logging.getLogger("azure_functions_worker_errors").info("worker detail")
logging.getLogger("azure.functions").info("sdk detail")
worker.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer")
get_logger("shared.service.users").info("users.recomputed", users=3)

bodies = [str(getattr(r, "log_record", r).body) for r in exported.get_finished_logs()]
print(json.dumps({"bodies": bodies}))
sys.stdout.flush()
os._exit(0)  # skip the exit-time flush: nothing may leave the machine
"""


def test_the_workers_own_per_invocation_lines_are_not_exported() -> None:
    """The Python worker logs a line per invocation ("Received FunctionInvocationRequest ...")
    and other notes of its own on `azure_functions_worker` and `azure.functions`; it sends them
    to the host as system logs, never to the app's Application Insights (its
    `is_system_log_category`). They reach the root logger too, where our exporter would make
    each an extra trace per invocation. Its warnings and errors still go out."""
    result, _ = _run(_WORKER_PROBE, APP_INSIGHTS)
    bodies = result["bodies"]

    assert [json.loads(b)["event"] for b in bodies if "users.recomputed" in b] == [
        "users.recomputed"
    ]
    assert not [b for b in bodies if "Received FunctionInvocationRequest" in b]
    assert not [b for b in bodies if "worker detail" in b or "sdk detail" in b]
    assert [b for b in bodies if "PYTHON_THREADPOOL_THREAD_COUNT" in b]


@pytest.mark.parametrize(
    "connection",
    [
        "not-a-connection-string",
        "InstrumentationKey=;IngestionEndpoint=http://127.0.0.1:9/",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/appi/)",
    ],
)
def test_a_connection_string_the_exporter_refuses_leaves_the_app_running(connection: str) -> None:
    """`configure_logging` runs before the first handler gets its services: raising there (as
    ``configure_azure_monitor()`` does for a connection string it cannot parse) failed every
    invocation (webhooks answered Graph 500, every queue message went to -poison) with a
    message naming no setting. The app runs without the export and says which setting is bad."""
    code = (
        "import json, logging, os, sys\n"
        "from shared.platform.logging import azure_monitor_enabled, configure_logging\n"
        "env = json.loads(sys.argv[1])\n"
        "configure_logging(env=env)\n"
        "configure_logging(env=env)  # the next invocation's: no second attempt, no second line\n"
        "print(json.dumps({'enabled': azure_monitor_enabled()}))\n"
        "sys.stdout.flush()\n"
        "os._exit(0)\n"
    )

    result, stderr = _run(code, {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection})

    assert result == {"enabled": False}
    [line] = [text for text in stderr.splitlines() if CONNECTION_STRING in text]
    assert "not exported" in line
    assert "Traceback" not in stderr


_INGESTION_PROBE = """
import gzip, http.server, json, logging, os, sys, threading, time
received = []

class Ingestion(http.server.BaseHTTPRequestHandler):
    # Application Insights' track endpoint, on loopback: it accepts every item.
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip" or body[:2] == b"\\x1f\\x8b":
            body = gzip.decompress(body)
        items = json.loads(body)
        received.extend(items if isinstance(items, list) else [items])
        n = len(items) if isinstance(items, list) else 1
        answer = json.dumps({"itemsReceived": n, "itemsAccepted": n, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}/"
os.environ["OTEL_BLRP_SCHEDULE_DELAY"] = "100"  # export every 0.1 s, not every 5 s
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import configure_logging, get_logger
configure_logging(env={"APPLICATIONINSIGHTS_CONNECTION_STRING": (
    "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
    f"IngestionEndpoint={base};LiveEndpoint={base}")})
get_logger("shared.service.users").info("users.recomputed", users=1)
time.sleep(2)  # some twenty export rounds
messages = [
    str(item.get("data", {}).get("baseData", {}).get("message", ""))
    for item in received if str(item.get("name", "")).endswith("Message")
]
print(json.dumps({"messages": messages}))
sys.stdout.flush()
os._exit(0)
"""


def test_the_exporters_own_transmission_lines_are_not_exported() -> None:
    """After each post the exporter logs "Transmission succeeded ..." at INFO, the level the
    worker runs the root logger at, where our exporter is: exported, each line was the next
    post's item and made the next line, a trace every export round (5 s) on every instance
    for as long as it runs, the always-ready one included, with nothing happening."""
    result, _ = _run(_INGESTION_PROBE, {})
    messages = result["messages"]

    assert [m for m in messages if "users.recomputed" in m]  # the export works
    assert not [m for m in messages if "Transmission succeeded" in m]
    assert len(messages) == 1


_OUTAGE_PROBE = """
import json, logging, os, sys, time
os.environ["OTEL_BLRP_SCHEDULE_DELAY"] = "100"  # export every 0.1 s, not every 5 s
logging.getLogger().setLevel(logging.INFO)  # the worker sets the root level in Azure
from shared.platform.logging import configure_logging, get_logger
configure_logging(env=json.loads(sys.argv[1]))  # ingestion and live metrics: nobody listens
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
exported = InMemoryLogRecordExporter()
get_logger_provider().add_log_record_processor(SimpleLogRecordProcessor(exported))
get_logger("shared.service.users").info("users.recomputed", users=1)
logging.getLogger("opentelemetry.sdk.probe").warning("an SDK warning")
time.sleep(3)  # some thirty failed export rounds
finished = exported.get_finished_logs()
print(json.dumps({
    "scopes": [x.instrumentation_scope.name for x in finished],
    "bodies": [str(x.log_record.body) for x in finished],
}))
sys.stdout.flush()
os._exit(0)
"""


def test_the_exporters_own_lines_are_not_exported_during_an_outage() -> None:
    """With ingestion down, each failed post logs a warning ("Retrying due to server request
    error", live metrics' failed pings): exported, each was an item of the next failing post,
    one more every round on every instance for as long as the outage lasts. The exporter's and
    the OpenTelemetry SDK's own records are kept out of the export at every level; their
    warnings still reach stderr (the host's console log)."""
    result, stderr = _run(_OUTAGE_PROBE, APP_INSIGHTS)

    assert result["scopes"] == ["shared.service.users"]  # our event, and nothing of theirs
    assert "Retrying due to server request error" in stderr
    assert "WARNING opentelemetry.sdk.probe: an SDK warning" in stderr


def test_the_exporter_authenticates_with_the_managed_identity_named_in_the_setting() -> None:
    from shared.platform.telemetry import _managed_identity_client_id

    client_id = "11111111-2222-4333-8444-555555555555"

    assert _managed_identity_client_id(f"ClientId={client_id};Authorization=AAD") == (
        True,
        client_id,
    )
    assert _managed_identity_client_id("Authorization=AAD") == (True, None)
    assert _managed_identity_client_id("") == (False, None)


def test_the_worker_exporter_setting_keeps_ours_off() -> None:
    code = (
        "import json, sys\n"
        "from shared.platform.logging import configure_logging, azure_monitor_enabled\n"
        "configure_logging(env=json.loads(sys.argv[1]))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('azure.monitor'))\n"
        "print(json.dumps({'enabled': azure_monitor_enabled(), 'loaded': loaded}))\n"
    )
    env = {**APP_INSIGHTS, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"}

    result, _ = _run(code, env)

    assert result == {"enabled": False, "loaded": []}


@pytest.mark.parametrize("value", ["1", "True ", "yes", "y", "t"])
def test_every_value_the_worker_reads_as_true_keeps_ours_off(value: str) -> None:
    """The Python worker switches its exporter on for any value its `is_true_like` accepts
    (azure_functions_worker.utils.common: 1, true, t, yes, y; any case, stripped). Ours must
    stay off for each of them, or every record is exported twice."""
    code = (
        "import json, os, sys\n"
        "from shared.platform.logging import configure_logging, azure_monitor_enabled\n"
        "configure_logging(env=json.loads(sys.argv[1]))\n"
        "print(json.dumps({'enabled': azure_monitor_enabled()}))\n"
        "sys.stdout.flush()\n"
        "os._exit(0)  # skip the exit-time flush: nothing may leave the machine\n"
    )
    env = {**APP_INSIGHTS, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": value}

    result, _ = _run(code, env)

    assert result == {"enabled": False}


@pytest.mark.parametrize("value", ["false", "0", "no", ""])
def test_a_worker_exporter_switched_off_leaves_ours_on(value: str) -> None:
    code = (
        "import json, os, sys\n"
        "from shared.platform.logging import configure_logging, azure_monitor_enabled\n"
        "configure_logging(env=json.loads(sys.argv[1]))\n"
        "print(json.dumps({'enabled': azure_monitor_enabled()}))\n"
        "sys.stdout.flush()\n"
        "os._exit(0)  # skip the exit-time flush: nothing may leave the machine\n"
    )
    env = {**APP_INSIGHTS, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": value}

    result, _ = _run(code, env)

    assert result == {"enabled": True}


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


_LEVELS = frozenset({"info", "warning", "error", "exception", "critical"})
_PERSONAL_FIELD = re.compile(
    r"display_?name|principal|upn|mail(?!_id)|sender|recipient|^name$|^to$", re.IGNORECASE
)
_PERSONAL_VALUE = re.compile(
    r"display_?name|principal_?name|upn|\.mail\b|mail_?address|\.name\b|sender|recipient",
    re.IGNORECASE,
)
"""Field names and values (expressions) that would carry a display name, a UPN or a mailbox.
Not personal, so not matched: ``mail_id`` and ``mail.kind`` (an alert mail's id and kind),
``subject=mail.subject`` (the tenant's name and counts, shared/render/alert_mails.py)."""
_ALLOWED = {
    "channel=channel.name": "an alert channel's label from ALERT_CHANNELS, no person's name",
}


def _log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Every ``<logger>.info/warning/error/exception/critical(...)`` call (any receiver that is
    a name ending in ``log``/``logger``), over as many lines as it takes."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _LEVELS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id.lower().endswith(("log", "logger"))
        ):
            yield node


def _personal_fields(call: ast.Call) -> list[str]:
    """The call's keyword fields (and values after the event) whose name or value looks
    personal; literal text is no data and is skipped."""
    found = [
        f"{keyword.arg}={ast.unparse(keyword.value)}"
        for keyword in call.keywords
        if _PERSONAL_FIELD.search(keyword.arg or "")
        or (
            not isinstance(keyword.value, ast.Constant)
            and _PERSONAL_VALUE.search(ast.unparse(keyword.value))
        )
    ]
    found += [
        ast.unparse(arg)
        for arg in call.args[1:]
        if not isinstance(arg, ast.Constant) and _PERSONAL_VALUE.search(ast.unparse(arg))
    ]
    return [field for field in found if field not in _ALLOWED]


def test_service_log_calls_carry_no_names_or_upns() -> None:
    """Ids only at info level and above: no display names, UPNs or mail addresses, in every
    module of shared/service and its packages, multi-line calls included; and in every other
    module the function app runs (the adapters, the platform, the triggers), whose records are
    exported as well."""
    modules = sorted({*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")})
    calls = {
        f"{path.relative_to(ROOT)}:{call.lineno}": call
        for path in modules
        for call in _log_calls(ast.parse(path.read_text(encoding="utf-8")))
    }
    offending = {where: found for where, call in calls.items() if (found := _personal_fields(call))}

    assert len(calls) > 80  # the walk found the calls, the subpackages' included
    assert any("shared/service/alerts/" in where for where in calls)
    assert any("shared/adapters/" in where for where in calls)
    assert offending == {}


def test_no_log_call_writes_an_exceptions_text() -> None:
    """Graph names a user in some error messages ("The requested user 'x@contoso.com' is
    invalid"): a `DirectoryError` is logged as `.loggable` (addresses masked), never `str()`."""
    modules = sorted({*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")})
    written = [
        f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(value)}"
        for path in modules
        for call in _log_calls(ast.parse(path.read_text(encoding="utf-8")))
        for value in [*call.args[1:], *(k.value for k in call.keywords)]
        if isinstance(value, ast.Call) and ast.unparse(value.func) in ("str", "repr")
    ]
    assert written == []


def test_a_directory_errors_loggable_text_masks_the_addresses_graph_names() -> None:
    error = DirectoryError(
        404, "Request_ResourceNotFound", "The requested user 'adele.v@contoso.com' is invalid."
    )
    assert "adele.v@contoso.com" in str(error)
    assert error.loggable == (
        "Graph 404 Request_ResourceNotFound: The requested user '<address>' is invalid."
    )
    plain = DirectoryError(403, "Authorization_RequestDenied", "Insufficient privileges.")
    assert plain.loggable == str(plain)


def test_the_log_call_scan_sees_a_multi_line_call_with_a_personal_field() -> None:
    code = textwrap.dedent(
        """
        log.warning(
            "mail.failed",
            group_id=group.id,
            sender=settings.alert_sender,
        )
        log.info("users.recomputed", users=len(users), mail_id=mail.id)
        log.error("user.failed", user=user.userPrincipalName, reason="no UPN")
        logger.info("group.seen", group=group.name, channel=channel.name)
        """
    )
    calls = sorted(_log_calls(ast.parse(code)), key=lambda call: call.lineno)

    assert [_personal_fields(call) for call in calls] == [
        ["sender=settings.alert_sender"],
        [],
        ["user=user.userPrincipalName"],
        ["group=group.name"],
    ]


# --- one export path: the app's exporter, the host's forwarding of user logs off -----------------


def _functions() -> dict[str, Any]:
    return {name: f.get_user_function() for name, f in indexed_functions().items()}


def test_every_handler_binds_its_invocation_first() -> None:
    for name, handler in _functions().items():
        context = inspect.signature(handler).parameters.get("context")
        assert context is not None, f"{name} takes no context"
        assert context.annotation in ("func.Context", func.Context), name
        [definition] = ast.parse(textwrap.dedent(inspect.getsource(handler))).body
        assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
        first = definition.body[0]
        assert ast.unparse(first) == "bind_invocation(context)", f"{name} starts otherwise"


def test_the_host_does_not_forward_user_logs_the_app_exports_itself() -> None:
    """Our exporter sends the worker's log records; the host would send them again as traces of
    category ``Function.<name>.User`` (learn.microsoft.com/azure/azure-functions/
    configure-monitoring#configure-categories), so host.json turns exactly those off and leaves
    the host's own categories (requests, function started/completed, errors) as they are."""
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    levels = host["logging"]["logLevel"]

    assert "telemetryMode" not in host  # the host keeps its Application Insights SDK mode
    user_categories = {key for key in levels if key.endswith(".User")}
    assert user_categories == {f"Function.{name}.User" for name in _functions()}
    assert {levels[key] for key in user_categories} == {"None"}
    assert levels["default"] == "Information"
    assert not {"Function", "Host", "Host.Results"} & set(levels)


def test_the_workers_own_exporter_is_off_in_azure() -> None:
    settings = app_settings()

    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "'false'"
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
