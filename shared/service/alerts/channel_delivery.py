"""Delivery to the alert channels besides mail: Teams, Slack and generic webhooks.

``ALERT_CHANNELS`` is a JSON list of ``{"type": "teams"|"slack"|"webhook", "urlSecretName":
NAME, "minSeverity": "info"|"warning"|"error", "name": optional, "signingSecretName":
optional}``. ``urlSecretName`` (and ``signingSecretName``) name app settings whose values are
Key Vault references (``@Microsoft.KeyVault(SecretName=...)``), resolved by the platform: the
webhook URLs are secrets and never sit in plain settings or the repository.

Each channel keeps its own state in ``servicestate`` (``alerts-channel-<name>``: ``lastId``,
``lastIds``, ``failures``, ``lastError``), so one channel's outage never holds back another or
the mail:

1. a digest id the channel already accepted is not posted again (the id travels in the
   ``X-License-Guard-Digest`` header and the payload: a receiver drops a repeat). ``lastIds``
   keeps the last id taken of each mail channel (digest, tenant, immediate, ...): a mail that
   failed is retried under its id after other alerts were posted, and each mail channel has
   one pending id at a time; ``lastId`` is the last id taken of any;
2. 429 and 5xx are retried with backoff (Retry-After, capped); anything else fails at once;
3. a failure is counted; at `FAILURES_FOR_ALERT` consecutive failures the caller's
   ``on_failing`` is told (it raises a tenant-level alert); an accepted post resets the count.

A crash after a receiver accepted and before ``lastId`` is stored resends that one post with
the same id: at most one duplicate, as with mail.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import orjson
import structlog

from shared.platform.channel_config import Channel
from shared.platform.setting_values import UNRESOLVED_REFERENCE, is_unresolved_reference
from shared.ports.tables import json_field, parse_json_field, safe_key
from shared.render.channel_payloads import DIGEST_HEADER, SIGNATURE_HEADER, signature
from shared.service.alerts.sending import ALREADY_SENT, ATTEMPTS, FAILED, SENT, Sleep, retry_wait
from shared.service.stores import ServiceState

log = structlog.get_logger(__name__)

FAILURES_FOR_ALERT: Final = 3

NOTHING: Final = "nothing-to-send"
NO_URL: Final = "no-url"


class Poster(Protocol):
    async def __call__(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, float | None]:
        """POST; returns the status and Retry-After seconds (if any). Raises OSError on a
        connection failure, ValueError when `url` is no URL it can post to."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelResult:
    channel: str
    status: str
    attempts: int = 0
    reason: str = ""


STATE_PREFIX: Final = "alerts-channel-"


def state_name(channel: Channel) -> str:
    """The channel's record: its name as a table key (a Slack-style "#alerts" holds a '#')."""
    return STATE_PREFIX + safe_key(channel.name)


async def deliver_to_channels(
    state: ServiceState,
    channels: Sequence[Channel],
    digest_id: str,
    payload_for: Callable[[Channel], dict[str, Any] | None],
    *,
    settings: Mapping[str, str],
    post: Poster,
    now: Callable[[], Any],
    on_failing: Callable[[Channel, str], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    mail_channel: str = "",
) -> list[ChannelResult]:
    """Post one alert to every channel, each on its own (see the module docstring).
    `payload_for` returns None when nothing reaches the channel's minimum severity;
    `mail_channel` is the alert's mail channel (``digest``, ``tenant``, ...)."""
    results = []
    sent = _Sent(digest_id, mail_channel)
    for channel in channels:
        try:
            results.append(
                await _one(
                    state, channel, sent, payload_for, settings, post, now, on_failing, sleep
                )
            )
        except Exception as exc:  # one channel's bug never stops the others
            log.exception("alerts.channel_error", channel=channel.name)
            results.append(ChannelResult(channel.name, FAILED, reason=type(exc).__name__))
    return results


@dataclass(frozen=True, slots=True)
class _Sent:
    """The alert being posted: its id, and the mail channel whose pending id it is."""

    digest_id: str
    mail_channel: str

    def taken_by(self, fields: Mapping[str, Any]) -> bool:
        """Whether a channel whose state holds `fields` already took this alert."""
        last_ids = parse_json_field(str(fields.get("lastIds") or "{}"))
        return self.digest_id in (fields.get("lastId"), last_ids.get(self.mail_channel))

    def recorded(self, fields: Mapping[str, Any], now: Any) -> dict[str, Any]:
        """`fields` once the channel took this alert."""
        last_ids = parse_json_field(str(fields.get("lastIds") or "{}"))
        last_ids[self.mail_channel] = self.digest_id
        return {
            **fields,
            "lastId": self.digest_id,
            "lastIds": json_field(last_ids),
            "lastAt": now,
            "failures": 0,
            "lastError": "",
        }


def _update(
    state: ServiceState, channel: Channel, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Apply `change` to the channel's state as it is now and return what was written: the
    alerts of other mail channels, posted at once by other workers, keep what they recorded."""
    return state.change(state_name(channel), change) or {}


def _postable(url: str) -> bool:
    """An https URL, or plain http to this machine's loopback (a local receiver: the tests,
    `make demo`). By host, not by prefix: "http://127.0.0.1.example.net/" and
    "http://127.0.0.1@example.net/" are other machines, reached in clear text."""
    if url.startswith("https://"):
        return True
    try:
        parts = urlsplit(url)
        return parts.scheme == "http" and parts.hostname == "127.0.0.1"
    except ValueError:
        return False


async def _one(
    state: ServiceState,
    channel: Channel,
    sent: _Sent,
    payload_for: Callable[[Channel], dict[str, Any] | None],
    settings: Mapping[str, str],
    post: Poster,
    now: Callable[[], Any],
    on_failing: Callable[[Channel, str], None] | None,
    sleep: Sleep,
) -> ChannelResult:
    entity = state.get(state_name(channel))
    digest_id = sent.digest_id
    if entity is not None and sent.taken_by(entity.fields):
        return ChannelResult(channel.name, ALREADY_SENT)
    url = (settings.get(channel.url_setting) or "").strip()
    if not _postable(url):
        problem = UNRESOLVED_REFERENCE if is_unresolved_reference(url) else "no https URL"
        reason = f"app setting {channel.url_setting} holds {problem}"
        return _failed(state, channel, reason, on_failing, now, status=NO_URL)
    payload = payload_for(channel)
    if payload is None:
        return ChannelResult(channel.name, NOTHING)
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", DIGEST_HEADER: digest_id}
    if channel.signing_setting:
        secret = settings.get(channel.signing_setting) or ""
        if not secret or is_unresolved_reference(secret):
            problem = UNRESOLVED_REFERENCE if secret else "empty"
            reason = f"app setting {channel.signing_setting} (the signing secret) is {problem}"
            return _failed(state, channel, reason, on_failing, now)
        headers[SIGNATURE_HEADER] = signature(secret, body)
    attempt, reason = 0, ""
    while attempt < ATTEMPTS:
        attempt += 1
        try:
            status, retry_after = await post(url, body, headers)
        except OSError as exc:
            status, retry_after, reason = 0, None, f"connection failed: {connection_problem(exc)}"
        except ValueError:  # not the URL's text: it is the secret
            reason = f"app setting {channel.url_setting} holds no valid URL"
            break
        else:
            reason = f"HTTP {status}"
            if 200 <= status < 300:
                _update(state, channel, partial(sent.recorded, now=now()))
                log.info(
                    "alerts.channel_sent",
                    channel=channel.name,
                    digest_id=digest_id,
                    attempts=attempt,
                )
                return ChannelResult(channel.name, SENT, attempt)
        if status and status != 429 and status < 500:
            break
        if attempt < ATTEMPTS:
            await sleep(retry_wait(attempt, retry_after))
    return _failed(state, channel, reason, on_failing, now, attempts=attempt)


class ConnectionProblem(OSError):
    """A connection failure its poster put in words of its own, naming nothing of the URL."""


_PROBLEMS: Final = (
    (socket.gaierror, "DNS lookup of the URL's host failed"),
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset by the receiver"),
    (ssl.SSLCertVerificationError, "TLS certificate not trusted"),
    (ssl.SSLError, "TLS handshake failed"),
    (TimeoutError, "timed out"),
)


def connection_problem(exc: OSError) -> str:
    """What kind of connection failure `exc` is (DNS, refused, TLS, timeout), in words that
    name nothing of the URL (a secret); a `ConnectionProblem`'s own words; the exception's
    type for any other."""
    if isinstance(exc, ConnectionProblem):
        return str(exc)
    for kind, words in _PROBLEMS:
        if isinstance(exc, kind):
            return words
    return type(exc).__name__


def _failed(
    state: ServiceState,
    channel: Channel,
    reason: str,
    on_failing: Callable[[Channel, str], None] | None,
    now: Callable[[], Any],
    *,
    status: str = FAILED,
    attempts: int = 0,
) -> ChannelResult:
    at = now()

    def failed(fields: dict[str, Any]) -> dict[str, Any]:
        failures = int(fields.get("failures") or 0) + 1
        return {**fields, "failures": failures, "lastError": reason, "lastErrorAt": at}

    failures = int(_update(state, channel, failed)["failures"])
    log.error("alerts.channel_failed", channel=channel.name, reason=reason, failures=failures)
    if failures >= FAILURES_FOR_ALERT and on_failing is not None:
        on_failing(channel, f"{failures} failed deliveries in a row, the last: {reason}")
    return ChannelResult(channel.name, status, attempts, reason)
