"""Application Insights export of our log records (OpenTelemetry, `azure-monitor-opentelemetry`).

`enable` calls ``configure_azure_monitor()`` once per process, only with
``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, authenticating with the managed identity named in
``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (``ClientId=<id>;Authorization=AAD``) because the
Application Insights resource has local auth off. It then swaps the distro's OpenTelemetry
`LoggingHandler` on the root logger for `PrimitiveAttributesHandler`, which exports each record's
extra attributes (our structlog fields, bound context variables) as log attributes, so they land
in ``customDimensions``, after turning every value into a type OpenTelemetry accepts. The SDK
would otherwise drop a non-primitive value (a dict, ``None``, a datetime) and print an "Invalid
type" warning for every event that carries one. Spans (dependencies) get their URLs without
ids, mailboxes or query values (`shared.platform.telemetry_urls`). The worker's own records
below WARNING (`WORKER_LOGGERS`) are not exported: the worker keeps them out of the app's
telemetry. Nor are the exporter's own records (`EXPORTER_LOGGERS`), which go to stderr. A
connection string the distro refuses leaves the export off, never the app down (`enable`).

Why the app exports and not the Functions host (``telemetryMode: OpenTelemetry``): see
docs/operations.md "Telemetry".
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import threading
from collections.abc import Mapping
from typing import Any, Final

CONNECTION_STRING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING: Final = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
WORKER_TELEMETRY: Final = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
"""Set to true, the Python worker runs its own exporter; ours then stays off (one export only)."""
WORKER_TRUE_WORDS: Final = frozenset({"1", "true", "t", "yes", "y"})
"""What the Python worker reads as true in `WORKER_TELEMETRY` (its ``is_true_like``, any case):
``1`` or ``yes`` switches its exporter on as ``true`` does, so ours must stay off for each."""

_STANDARD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_lock = threading.Lock()
_enabled = False
_refused = False
"""The connection string was refused once: not tried again in this process (one line)."""


def enabled() -> bool:
    """True once `enable` has switched the Application Insights exporter on in this process."""
    return _enabled


def primitive(value: Any) -> str | bool | int | float:
    """`value` as an OpenTelemetry attribute value: str/bool/int/float kept, others as text
    (JSON for lists and mappings, so a KQL query can still parse them)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return json.dumps(items, default=str, sort_keys=True, separators=(",", ":"))
    return str(value)


def _with_primitive_attributes(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of `record` whose extra attributes all have primitive values (None dropped)."""
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}
    if all(isinstance(v, str | bool | int | float) for v in extras.values()):
        return record
    clean = copy.copy(record)
    for key, value in extras.items():
        if value is None:
            delattr(clean, key)
        else:
            setattr(clean, key, primitive(value))
    return clean


def _managed_identity_client_id(authentication: str) -> tuple[bool, str | None]:
    """(Entra auth wanted, client id) from ``ClientId=<id>;Authorization=AAD``."""
    parts = {
        key.strip().lower(): value.strip()
        for key, _, value in (item.partition("=") for item in authentication.split(";"))
        if key.strip()
    }
    return parts.get("authorization", "").upper() == "AAD", parts.get("clientid") or None


WORKER_LOGGERS: Final = ("azure_functions_worker", "azure.functions")
"""The Python worker's own loggers (and the SDK's), its "system logs" by name prefix
(``is_system_log_category``): it sends them to the host, never to the app's Application
Insights. Their records propagate to the root logger, where our exporter is: below WARNING
(a line per invocation, "Received FunctionInvocationRequest ...") they are not exported."""


EXPORTER_LOGGERS: Final = ("azure.monitor.opentelemetry", "opentelemetry")
"""The exporter's (and the distro's, live metrics') and the OpenTelemetry SDK's own loggers.
Not exported at any level: during an ingestion outage each failed post logs a warning
("Retrying due to server request error", "Exception occurred while pinging live metrics"),
and exported, each would be an item of the next failing post, one more per round. Their
warnings and errors go to stderr (the host's console log) instead."""


def _is_exporter_record(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in EXPORTER_LOGGERS)


def _exportable(record: logging.LogRecord) -> bool:
    """False for the worker's own records below WARNING (see `WORKER_LOGGERS`) and for every
    record of the exporter's own loggers (`EXPORTER_LOGGERS`)."""
    if _is_exporter_record(record.name):
        return False
    return record.levelno >= logging.WARNING or not record.name.startswith(WORKER_LOGGERS)


class _ExporterConsole(logging.StreamHandler):  # type: ignore[type-arg]
    """The exporter's own warnings and errors on stderr, one plain line each."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def _exporter_lines_to_stderr() -> None:
    """An `_ExporterConsole` on each of `EXPORTER_LOGGERS`, once."""
    for name in EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ExporterConsole) for h in logger.handlers):
            logger.addHandler(_ExporterConsole())


def _swap_handler(root: logging.Logger) -> None:
    """Replace the distro's LoggingHandler on `root` with one exporting primitive attributes."""
    from opentelemetry._logs import get_logger_provider  # noqa: PLC0415 - only in Azure
    from opentelemetry.instrumentation.logging.handler import LoggingHandler  # noqa: PLC0415

    class PrimitiveAttributesHandler(LoggingHandler):
        """The distro's handler, fed a copy of each record with primitive attribute values."""

        def emit(self, record: logging.LogRecord) -> None:
            super().emit(_with_primitive_attributes(record))

    for handler in list(root.handlers):
        if type(handler) is LoggingHandler:
            root.removeHandler(handler)
            replacement = PrimitiveAttributesHandler(
                level=handler.level, logger_provider=get_logger_provider()
            )
            replacement.addFilter(_exportable)
            root.addHandler(replacement)


def enable(env: Mapping[str, str]) -> None:
    """Call configure_azure_monitor() once per process, only with a connection string and
    unless the worker's own exporter is switched on.

    A connection string it refuses (ValueError: not one, no instrumentation key, a Key Vault
    reference left unresolved) does not stop the app: this runs before every handler's first
    services, so raising failed every invocation. The app runs without the export, and one line
    on stderr (the host's console log) names the setting."""
    global _enabled, _refused  # noqa: PLW0603 - one exporter per process, guarded by a lock
    connection = (env.get(CONNECTION_STRING) or "").strip()
    worker_exports = (env.get(WORKER_TELEMETRY) or "").strip().lower() in WORKER_TRUE_WORDS
    if not connection or worker_exports:
        return
    with _lock:
        if _enabled or _refused:
            return
        # Imported here: heavy, and only needed in Azure.
        from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415

        from shared.platform.telemetry_urls import (  # noqa: PLC0415
            UrlRedactingProcessor,
            redact_azure_sdk_urls,
        )

        options: dict[str, Any] = {
            "connection_string": connection,
            "span_processors": [UrlRedactingProcessor()],  # no ids or mailboxes in URLs
        }
        entra, client_id = _managed_identity_client_id(env.get(AUTHENTICATION_STRING) or "")
        if entra:
            from azure.identity import ManagedIdentityCredential  # noqa: PLC0415

            options["credential"] = ManagedIdentityCredential(client_id=client_id)
        try:
            configure_azure_monitor(**options)
        except ValueError as exc:
            _refused = True
            sys.stderr.write(
                f"{CONNECTION_STRING}: {exc}; the app's logs are not exported to Application "
                "Insights (set it to the resource's connection string and restart the app)\n"
            )
            sys.stderr.flush()
            return
        redact_azure_sdk_urls()
        _swap_handler(logging.getLogger())
        _exporter_lines_to_stderr()
        _enabled = True
