"""Every alert mail also goes to the configured channels (``ALERT_CHANNELS``): the mail's view
becomes a Teams card or Slack blocks, its findings the generic webhook's document (whose
`counts.open` is the tenant's open count, `shared.service.alerts.open_counts`). Called by
`shared.service.alerts.deliver.deliver` (before the mail) with the mail and its id, so the
digest, the immediate data-loss / mass-loss alerts, the tenant-level alerts and the summaries
all reach them, with the mail's id as the digest id. A channel that keeps failing is recorded as an
`AlertChannelFailing` finding (subject ``service:alert-channel:<name>``); nothing a channel
does reaches the mail's delivery.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any, Final

import httpx
import structlog

from shared.core.findings import WARNING, Finding
from shared.platform.channel_config import Channel
from shared.ports.tables import from_safe_key
from shared.render.channel_payloads import slack_message, teams_message, webhook_payload
from shared.render.channel_sections import worth_posting
from shared.render.mail import Mail
from shared.service.alerts.channel_delivery import (
    STATE_PREFIX,
    ChannelResult,
    ConnectionProblem,
    Poster,
    deliver_to_channels,
)
from shared.service.alerts.open_counts import tenant_open_counts
from shared.service.alerts.sending import SENT, Sleep
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ServiceState

log = structlog.get_logger(__name__)

CHANNEL_FAILING: Final = "AlertChannelFailing"
TIMEOUT_SECONDS: Final = 15.0


_KINDS: Final = (
    socket.gaierror,
    ConnectionRefusedError,
    ConnectionResetError,
    ssl.SSLCertVerificationError,
    ssl.SSLError,
    TimeoutError,
)


def _transport_error(exc: httpx.TransportError, timeout: float) -> OSError:
    """The failure as the OSError of its kind (`channel_delivery.connection_problem` names
    it), with a message of ours: httpx's text may quote the host, part of the secret URL."""
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"no answer within {timeout:g} s")
    cause: BaseException | None = exc
    for _ in range(20):  # a chain can loop back on itself
        if cause is None:
            break
        for kind in _KINDS:
            if isinstance(cause, kind):
                return kind(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectionProblem("the receiver broke off the HTTP exchange (no answer)")
    return ConnectionProblem(f"network error ({type(exc).__name__})")


async def http_post(
    url: str, body: bytes, headers: Mapping[str, str], *, wait: float = TIMEOUT_SECONDS
) -> tuple[int, float | None]:
    """POST over HTTPS; a transport failure is an OSError of its kind to the delivery loop
    (`socket.gaierror`: DNS, `ConnectionRefusedError`, `ssl.SSLError`: TLS, `TimeoutError`,
    ...), a URL httpx refuses (a line break inside, a bad port) a ValueError; neither names
    anything of the URL. `wait`: the seconds a connection and an answer may take.

    Not traced: the telemetry's httpx instrumentation would record the URL as a dependency,
    and a channel's URL is its secret (a Slack hook's path; Teams' ``sig`` it redacts)."""
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation  # noqa: PLC0415

    try:
        async with httpx.AsyncClient(timeout=wait, follow_redirects=False) as client:
            with suppress_http_instrumentation():
                response = await client.post(url, content=body, headers=dict(headers))
    except httpx.TransportError as exc:
        raise _transport_error(exc, wait) from None
    except httpx.InvalidURL:
        raise ValueError("not a valid URL") from None
    retry = response.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    return response.status_code, retry_after


def payload_for(
    mail: Mail,
    channel: Channel,
    report_url: str | None,
    generated_at: str = "",
    open_counts: Mapping[str, int] | None = None,
) -> dict[str, Any] | None:
    """The channel's payload, or None when the channel would show nothing of the mail: none of
    its rows, findings or table lines by severity reaches the channel's minimum severity
    (`worth_posting`), the same for every kind of channel. `open_counts` (by severity) is the
    webhook's `counts.open`."""
    view = mail.view
    if view is None or not worth_posting(
        view, channel.min_severity, [f.severity for f in mail.findings]
    ):
        return None
    if channel.type in ("teams", "slack"):
        build = teams_message if channel.type == "teams" else slack_message
        return build(view, minimum=channel.min_severity, report_url=report_url)
    return webhook_payload(
        digest_id=mail.id,
        kind=mail.kind,
        tenant=view.tenant,
        title=mail.subject,
        generated_at=generated_at,
        findings=mail.findings,
        minimum=channel.min_severity,
        report_url=report_url,
        open_counts=open_counts,
        view=mail.whole or view,  # the sections uncut, as the mail had them before it fitted
    )


def _subject(channel: Channel) -> str:
    return _subject_of(channel.name)


_PLAIN: Final = re.compile(r"[A-Za-z0-9_.-]")


def _subject_of(name: str) -> str:
    """One subject per name: letters, digits, `_`, `.` and `-` as they are, any other
    character as its UTF-8 bytes, each `~XX` (as `safe_key` writes a table key), so "#ops"
    (`~23ops`) and "_ops" are two channels' findings, not one."""
    return "service:alert-channel:" + "".join(
        c if _PLAIN.fullmatch(c) else "".join(f"~{b:02X}" for b in c.encode()) for c in name
    )


def _old_subject_of(name: str) -> str:
    """The subject before names were escaped (each other character as `_`): a finding
    recorded under it is resolved once that subject is no listed channel's own."""
    return "service:alert-channel:" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def resolve_removed_channels(svc: Services) -> None:
    """Resolve the `AlertChannelFailing` finding of a channel no longer in ALERT_CHANNELS
    (removed, or renamed: state and finding go by name). Only an accepted post resolves it
    otherwise, and nothing posts to that channel again. Every channel that ever failed has
    its state (`alerts-channel-<name>`), which is where the names are found."""
    listed = {_subject(c) for c in svc.settings.alert_channels}
    ledger = FindingsLedger(svc.tables.findings)
    for name in ServiceState(svc.tables.servicestate).names(STATE_PREFIX):
        channel = from_safe_key(name.removeprefix(STATE_PREFIX))
        for subject in {_subject_of(channel), _old_subject_of(channel)}:
            if subject not in listed and ledger.open_findings(subject):
                ledger.reconcile(subject, [], now=svc.now(), run_id="alerts")


def report_url(svc: Services) -> str | None:
    """The latest report page in the reports container (readable with Storage Blob Data
    Reader), when storage is reached by URI."""
    uri = svc.settings.storage_connection.blob_service_uri
    return f"{uri.rstrip('/')}/reports/latest/report.html" if uri else None


async def send_to_channels(
    svc: Services,
    mail: Mail,
    *,
    post: Poster = http_post,
    sleep: Sleep = asyncio.sleep,
    environ: Mapping[str, str] | None = None,
    open_counts: Mapping[str, int] | None = None,
    mail_channel: str = "",
) -> list[ChannelResult]:
    """Post `mail` to every channel. `open_counts`: the tenant's open findings by severity as
    the digest counts them (the digest passes its own); counted from the ledger when a webhook
    needs them and none were given. `mail_channel`: the mail's channel (``digest``, ...),
    whose last id each channel keeps."""
    channels = svc.settings.alert_channels
    if not channels or mail.view is None:
        return []
    ledger = FindingsLedger(svc.tables.findings)
    link = report_url(svc)
    now = svc.now()

    def failing(channel: Channel, why: str) -> None:
        finding = Finding(
            code=CHANNEL_FAILING,
            severity=WARNING,
            subject=_subject(channel),
            sku_id=None,
            group_id=None,
            message=f"Alert channel '{channel.name}' ({channel.type}) fails: {why}.",
            remedy=(
                f"Check the URL in the Key Vault secret behind app setting {channel.url_setting} "
                "(Teams: the Workflows webhook; Slack: the incoming webhook) and that the "
                "receiver accepts JSON posts; mail alerts are unaffected."
            ),
        )
        ledger.reconcile(_subject(channel), [finding], now=now, run_id="alerts")

    try:
        if open_counts is None and any(c.type == "webhook" for c in channels):
            # what an immediate alert reports as new counts too; the weekly's standing
            # findings (listed as open) do not, as the digest does not count them
            reported = [f.key for f in mail.findings if f.status == "new"]
            open_counts = await tenant_open_counts(svc, reported)
        results = await deliver_to_channels(
            ServiceState(svc.tables.servicestate),
            channels,
            mail.id,
            lambda c: payload_for(mail, c, link, now.isoformat(), open_counts),
            settings=environ if environ is not None else os.environ,
            post=post,
            now=svc.now,
            on_failing=failing,
            sleep=sleep,
            mail_channel=mail_channel,
        )
    except Exception:  # the mail goes out whatever the channels do
        log.exception("alerts.channels_failed", mail_id=mail.id)
        return []
    for channel, result in zip(channels, results, strict=True):
        if result.status == SENT:
            ledger.reconcile(_subject(channel), [], now=now, run_id="alerts")
    return results
