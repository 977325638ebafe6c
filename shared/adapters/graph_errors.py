"""How Graph's failures become the port's `DirectoryError`: error bodies, batch items, transport.

One translation for every call: a kiota `APIError` (msgraph's `ODataError` for Graph error
bodies), a failed `$batch` item, and a dropped connection. An expired or reset delta token
(410, `syncStateNotFound`, `resyncRequired`, ...) becomes `DeltaTokenExpired`; Retry-After is
carried as `retry_after`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared.ports.directory import DeltaTokenExpired, DirectoryError

EXPIRED_DELTA_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "invalidsynctoken"}
)
ERROR_MAP: dict[str, Any] = {"XXX": ODataError}
"""The error map every request is sent with: any status parses Graph's body as ODataError."""


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a Retry-After header (any casing), or None."""
    if headers is None:
        return None
    value = None
    with contextlib.suppress(Exception):
        for key in ("Retry-After", "retry-after"):
            found = headers.get(key)
            if found:
                value = found
                break
    if isinstance(value, set | list | tuple):
        value = next(iter(value), None)
    if value is None:
        return None
    try:
        return max(0.0, float(str(value).strip()))
    except ValueError:
        return None


def _is_expired_delta_code(code: str) -> bool:
    low = code.lower()
    return low in EXPIRED_DELTA_CODES or "deltatoken" in low or "syncstate" in low


def to_directory_error(exc: APIError) -> DirectoryError:
    """Map a kiota APIError (msgraph's ODataError for Graph error bodies) to DirectoryError."""
    status = int(exc.response_status_code or 0)
    code = ""
    message = str(exc.primary_message or exc)
    if isinstance(exc, ODataError) and exc.error is not None:
        code = str(exc.error.code or "")
        message = str(exc.error.message or message)
    retry_after = retry_after_seconds(exc.response_headers)
    if status == 410 or _is_expired_delta_code(code):
        return DeltaTokenExpired(status, code or "syncStateNotFound", message, retry_after)
    if status == 401:
        message = f"Graph refused the access token: {message} (check: license-guard preflight)"
    return DirectoryError(status, code or f"HTTP{status}", message, retry_after)


def transport_error(exc: httpx.TransportError) -> DirectoryError:
    """A dropped or refused connection: transient (503), the work is retried later."""
    return DirectoryError(503, "TransportError", f"{type(exc).__name__}: {exc}")


def item_error(status: int, headers: Mapping[str, Any], body: Any) -> DirectoryError:
    """A `$batch` item's failure (its status, headers and Graph error body)."""
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code", "")) if isinstance(err, dict) else ""
    message = str(err.get("message", "")) if isinstance(err, dict) else ""
    retry = retry_after_seconds({k.lower(): v for k, v in headers.items()})
    return DirectoryError(status, code or f"HTTP{status}", message, retry)
