"""Graph's error envelope and an exception that carries it through the handlers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """Raised by handlers; rendered as Graph's `{"error": {...}}` body with the given status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner


def error_body(
    code: str,
    message: str,
    *,
    client_request_id: str | None = None,
    inner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    inner_error: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    if inner:
        inner_error.update(inner)
    return {"error": {"code": code, "message": message, "innerError": inner_error}}


def throttled_body(client_request_id: str | None = None) -> dict[str, Any]:
    """The documented 429 body (see graph-examples/throttled-429-response-body.json)."""
    body = error_body(
        "TooManyRequests",
        "Please retry again later.",
        client_request_id=client_request_id,
        inner={"code": "429", "message": "Please retry after", "status": "429"},
    )
    return body


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(object_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def invalid_object_id(key: str) -> GraphError:
    """What Graph answers for a group path whose key is not an object id (a GUID), e.g. a
    group's name: 400, not 404 (seen in Graph Explorer: microsoft-graph-docs-contrib#3854)."""
    return GraphError(400, "Request_BadRequest", f"Invalid object identifier '{key}'.")


def unsupported_query() -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
