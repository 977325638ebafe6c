"""Tell Entra License Guard that a directory sync cycle completed (Python twin of the .ps1).

POSTs one SyncCompleted message (JSON, see shared/ports/messages.py) to the app's HTTPS endpoint
``/api/directory/sync-completed`` with its own function key in the ``x-functions-key`` header.
The storage account allows no shared keys, so a SAS cannot work; the function key can.
Standard library only, so it runs on the sync server without the rest of the repository.

    python send_sync_completed.py --tenant-id <tenant GUID> \
        --url https://<app>.azurewebsites.net/api/directory/sync-completed \
        --key-file /etc/license-guard/onprem-sync-key

The key comes from --key-file (readable by the task's account only) or the environment
variable LICENSE_GUARD_SYNC_KEY; never from the command line, where the process list shows it.
408, 429, 5xx and connection errors are retried with exponential back-off (Retry-After honoured).

Exit status: 0 accepted (202); 1 refused by the app (4xx: fix the key or the message, a retry
will not help; or another 2xx, not the app's answer: check --url and any proxy); 2 bad
arguments or no key; 3 the app could not be reached or kept failing.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

KEY_ENVIRONMENT = "LICENSE_GUARD_SYNC_KEY"
ROUTE = "/api/directory/sync-completed"
EXIT_SENT, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
MAX_RETRY_AFTER = 120.0
ACCEPTED = 202


def build_message(
    tenant_id: str, completed_at: datetime, source: str, correlation_id: str | None = None
) -> dict[str, object]:
    """The SyncCompleted wire format (see shared/ports/messages.py), ready for json.dumps."""
    return {
        "type": "SyncCompleted",
        "version": 1,
        "tenantId": str(uuid.UUID(tenant_id)),
        "completedAt": completed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "correlationId": correlation_id or str(uuid.uuid4()),
    }


def _guid(text: str) -> str:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a GUID") from None
    return str(parsed)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 timestamp") from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z for UTC)")
    return moment


def _source(text: str) -> str:
    if not text.strip() or len(text) > 64 or not text.isprintable():
        raise argparse.ArgumentTypeError("source must be 1-64 printable characters")
    return text


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise argparse.ArgumentTypeError("the key must not travel in clear text: use https://")
    if parts.query:
        raise argparse.ArgumentTypeError("no query string: the key goes in a header, not ?code=")
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--url", required=True, type=_url, help=f"https://<app>.azurewebsites.net{ROUTE}"
    )
    parser.add_argument(
        "--key-file", type=Path, help=f"file holding the function key (else ${KEY_ENVIRONMENT})"
    )
    parser.add_argument("--tenant-id", required=True, type=_guid)
    parser.add_argument(
        "--completed-at", type=_moment, default=None, help="ISO 8601 with zone (default: now)"
    )
    parser.add_argument("--source", type=_source, default="entra-connect")
    parser.add_argument("--correlation-id", default=None, help="default: a new GUID")
    parser.add_argument("--attempts", type=int, default=6, help="tries in all (default 6)")
    parser.add_argument(
        "--backoff", type=float, default=2.0, help="first wait in seconds, doubled each try"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    args = parser.parse_args(argv)
    if args.attempts < 1 or args.backoff < 0 or args.timeout <= 0:
        parser.error("--attempts must be >= 1, --backoff >= 0 and --timeout > 0")
    return args


def read_key(key_file: Path | None) -> str:
    """The function key from the file, else the environment; ValueError says what is missing."""
    if key_file is not None:
        try:  # utf-8-sig: Notepad and Windows PowerShell's Out-File start the file with a BOM
            key = key_file.read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ValueError(f"cannot read --key-file {key_file}: {reason}") from None
        if not key:
            raise ValueError(f"--key-file {key_file} is empty")
        return _header_safe(key, f"--key-file {key_file}")
    key = os.environ.get(KEY_ENVIRONMENT, "").strip()
    if not key:
        raise ValueError(f"no key: pass --key-file or set {KEY_ENVIRONMENT}")
    return _header_safe(key, KEY_ENVIRONMENT)


def _header_safe(key: str, origin: str) -> str:
    """A function key is one word of ASCII; anything else cannot travel in a header."""
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        raise ValueError(f"{origin} does not hold a function key (one line of ASCII, no spaces)")
    return key


class Transient(Exception):
    """Worth another try: 408, 429, 5xx or no answer at all."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Refused(Exception):
    """The app answered 4xx (not 408 or 429): the key or the message is wrong."""


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off
    if seconds is None or math.isnan(seconds):
        return None  # float() takes "nan", which time.sleep does not
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not the app's answer (App Service Authentication's sign-in page, a proxy):
    urllib would follow it with the function key header and take the page's 200 for accepted.
    Not followed, it is an HTTPError the sender reports as refused."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _explain(error: urllib.error.HTTPError) -> str:
    if 300 <= error.code < 400:
        where = urlsplit(error.headers.get("Location") or "").hostname if error.headers else None
        return (
            f"HTTP {error.code}: redirected{f' to {where}' if where else ''}, not followed "
            "(the key goes to the app's own endpoint only; is App Service Authentication on?)"
        )
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        body = {}
    detail = body.get("message") if isinstance(body, dict) else None
    if error.code == 401:
        detail = "the function key was not accepted (rotated? see docs/operations.md)"
    return f"HTTP {error.code}: {detail or error.reason}"


def post_once(url: str, key: str, data: bytes, timeout: float) -> str:
    """POST and return the answer's text; raise Transient or Refused."""
    request = urllib.request.Request(  # noqa: S310 - parse_args allows http(s) only
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "x-functions-key": key},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            answer = str(response.read().decode("utf-8", "replace"))
            status = response.status
    except urllib.error.HTTPError as error:
        if error.code in (408, 429) or error.code >= 500:
            raise Transient(_explain(error), _retry_after(error)) from None
        raise Refused(_explain(error)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise Transient(f"no answer: {reason}") from None
    if status != ACCEPTED:
        # Another success is not the app's answer (a TLS-inspecting proxy's page, a wrong
        # host or path): nothing was queued.
        raise Refused(f"HTTP {status}, not the app's {ACCEPTED}: nothing was queued")
    return answer


def send(
    url: str,
    key: str,
    data: bytes,
    *,
    attempts: int,
    backoff: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """`post_once` with retries; the last Transient propagates when every attempt failed."""
    for attempt in range(1, attempts + 1):
        try:
            return post_once(url, key, data, timeout)
        except Transient as error:
            if attempt == attempts:
                raise
            wait = (
                error.retry_after if error.retry_after is not None else backoff * 2 ** (attempt - 1)
            )
            sys.stderr.write(f"send_sync_completed: try {attempt}: {error}; again in {wait:g}s\n")
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        key = read_key(args.key_file)
    except ValueError as error:
        sys.stderr.write(f"send_sync_completed: {error}\n")
        return EXIT_USAGE
    message = build_message(
        args.tenant_id, args.completed_at or datetime.now(UTC), args.source, args.correlation_id
    )
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    try:
        answer = send(
            args.url, key, data, attempts=args.attempts, backoff=args.backoff, timeout=args.timeout
        )
    except Refused as error:
        sys.stderr.write(f"send_sync_completed: refused: {error}\n")
        return EXIT_REFUSED
    except Transient as error:
        sys.stderr.write(f"send_sync_completed: gave up after {args.attempts} tries: {error}\n")
        return EXIT_UNREACHABLE
    sys.stdout.write(f"SyncCompleted accepted: {answer}\n")
    return EXIT_SENT


if __name__ == "__main__":
    sys.exit(main())
