"""URLs in exported spans without ids, mailboxes or query values (Application Insights
dependencies).

The distro's httpx instrumentation records every Graph call as a dependency with its full URL
(``url.full``): the exporter makes it the dependency's ``data`` and ``METHOD path`` its name.
A Graph path carries the `ALERT_SENDER` mailbox (``/users/alerts@contoso.com/messages``), user,
group and subscription ids, a query a ``$filter`` on an internet message id: each would reach
telemetry, and each id would make its own dependency name. `redacted_url` keeps the scheme,
host, port and the path's names, and replaces each key (the segment after a collection such as
``users`` or ``groups``, any GUID, anything with ``@``, a ``(...)`` key) with ``{id}`` and each
query value but a few harmless ones with ``{value}``: ``/users/{id}/messages``. Method, status
and duration are other attributes, kept as they are.

`UrlRedactingProcessor` applies it when a span starts, before any exporter (the trace export
and live metrics) sees the span: the httpx instrumentation (Graph, through the Graph SDK) sets
the URL in the span's start attributes. The Azure SDK (storage: a table entity's URL carries
its keys, user and group ids) sets it later, through its tracing plugin's `add_attribute`:
`redact_azure_sdk_urls` puts a plugin in place that redacts there. Imported only where the
exporter is switched on (`shared.platform.telemetry`).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

PLACEHOLDER: Final = "{id}"
VALUE_PLACEHOLDER: Final = "{value}"
URL_ATTRIBUTES: Final = ("url.full", "http.url")
"""Where the httpx and urllib instrumentations put a request's URL (new and old conventions)."""

KEYED_COLLECTIONS: Final = frozenset(
    name.lower()
    for name in (
        "users",
        "groups",
        "members",
        "transitiveMembers",
        "owners",
        "memberOf",
        "transitiveMemberOf",
        "messages",
        "mailFolders",
        "attachments",
        "subscriptions",
        "directoryObjects",
        "servicePrincipals",
        "applications",
        "appRoleAssignments",
        "appRoleAssignedTo",
        "licenseDetails",
        "subscribedSkus",
        "organization",
        "devices",
        "contacts",
        "directoryAudits",
    )
)
"""Graph collections whose next segment is an item's key (an id, a UPN, a mailbox)."""

NAMES_AFTER_A_COLLECTION: Final = frozenset(
    ("delta", "$count", "$ref", "$value", "getbyids", "drafts", "inbox", "sentitems")
)
"""Segments that follow a collection but are a function or a well-known folder, not a key."""

HARMLESS_QUERY: Final = frozenset(
    ("$top", "$select", "$count", "$expand", "$orderby", "api-version", "comp", "restype")
)
"""Query parameters whose values name no one and are kept."""

_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_KEY_IN_PARENTHESES: Final = re.compile(r"\(.*\)")


def _segment(segment: str, previous: str) -> str:
    plain = unquote(segment)
    if "(" in plain:  # users('x@y') or a table entity's (PartitionKey='..',RowKey='..')
        plain = _KEY_IN_PARENTHESES.sub(f"({PLACEHOLDER})", plain)
        return PLACEHOLDER if "@" in plain else quote(plain, safe="(){}$.-_~")
    if "@" in plain or _GUID.search(plain):
        return PLACEHOLDER
    keyed = unquote(previous).lower() in KEYED_COLLECTIONS
    lower = plain.lower()
    if keyed and lower not in NAMES_AFTER_A_COLLECTION and not lower.startswith("microsoft."):
        return PLACEHOLDER
    return segment


def redacted_url(url: str) -> str:
    """`url` with its keys and query values replaced (see the module docstring)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return VALUE_PLACEHOLDER
    segments = parts.path.split("/")
    path = "/".join(
        _segment(segment, segments[i - 1] if i else "") if segment else segment
        for i, segment in enumerate(segments)
    )
    query = "&".join(
        f"{key}={value if key.lower() in HARMLESS_QUERY else VALUE_PLACEHOLDER}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    netloc = parts.hostname or ""  # any user:password@ left out
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, path, query, ""))


class UrlRedactingProcessor(SpanProcessor):
    """Replaces a starting span's URL attributes with `redacted_url` of them."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes or {}
        for key in URL_ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, str):
                span.set_attribute(key, redacted_url(value))


def redact_azure_sdk_urls() -> None:
    """Azure SDK spans (azure-core's tracing plugin, which the distro switched on) get their
    URL attributes as `redacted_url` of them. Nothing when the plugin is not the one in use."""
    from azure.core.settings import settings  # noqa: PLC0415 - only where the exporter is on
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan  # noqa: PLC0415

    if settings.tracing_implementation() is not OpenTelemetrySpan:
        return

    class UrlRedactingSpan(OpenTelemetrySpan):
        """azure-core's OpenTelemetry span, its URL attributes redacted as they are set."""

        def add_attribute(self, key: str, value: Any) -> None:
            if key in URL_ATTRIBUTES and isinstance(value, str):
                value = redacted_url(value)
            super().add_attribute(key, value)

    settings.tracing_implementation = UrlRedactingSpan
