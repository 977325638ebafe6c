"""Mail delivery: exactly one mail per id, through a draft (docs/reliability.md, "Alert mail").

Each channel (digest, immediate, tenant, baseline, nightly, weekly) keeps its state in
`servicestate` (`alerts-<channel>`: `lastId`, `lastAt` (when its last mail was sent),
`pendingId`, `pendingAt`, `pendingDraftId`, `pendingRows`). A send:

1. refuses when alerts are disabled (no `ALERT_SENDER`) or a recipient is outside the
   tenant's verified domains (`mail_gate`: checked once per worker at the first send; refusal
   is logged and recorded as an `AlertRecipientsRefused` finding);
2. skips a mail whose id is the channel's `lastId` (already accepted: idempotent);
3. persists the id as `pendingId` *before* calling Graph;
4. finds or creates the draft: the mail as multipart/alternative MIME (plain text and HTML)
   with a Message-ID fixed by channel and id, and the `x-license-guard-digest` header. A draft
   with that `internetMessageId` already in the sender's Drafts (a create whose answer was
   lost, a crash before the next step) is reused, so no second draft is ever sent;
5. records the draft id as `pendingDraftId` *before* sending it;
6. sends the draft (`POST /users/{sender}/messages/{id}/send`). A retry sends the recorded
   draft again; Graph answers 404 once it has left Drafts, i.e. it was sent: recorded as sent.
   429, 5xx and lost answers are retried, waiting Graph's Retry-After (capped) or a backoff;
7. only after that does the caller record what was mailed (the findings' `alertedIn`) and
   then `confirm`, which advances `lastId` and clears the pending fields.

A pending mail replaced by a newer one (it failed, and the next run has other findings to
report) or no longer news (`confirm(..., sent=False)`) never goes out: its id is kept in
`abandonedIds` with when a run last claimed it (`pendingAt`, renewed by each claim), and a send
of the channel at least `DRAFT_LEASE` after that deletes its draft if it is still in the
sender's Drafts (found by its Message-ID, so a draft that was sent is never touched); a
failed deletion is retried by the next send. The lease: a worker may still be sending the
replaced mail (two workers alerting at once with different findings), and its draft deleted
under it would read as sent (404) and never arrive.

A crash between any two steps and the redelivery end in one mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

import structlog

from shared.ports.directory import DirectoryError
from shared.render.mail import Mail, mime
from shared.service.alerts import sending
from shared.service.alerts.mail_gate import enabled, recipients_refused
from shared.service.crashpoints import crash_point
from shared.service.services import Services
from shared.service.stores import ServiceState
from shared.service.stores.contention import write_contended

log = structlog.get_logger(__name__)

DRAFT_FIELD: Final = "pendingDraftId"
ROWS_FIELD: Final = "pendingRows"
ABANDONED_FIELD: Final = "abandonedIds"
MAX_ABANDONED: Final = 20
DRAFT_LEASE: Final = timedelta(minutes=30)
"""How long after a run claimed a mail its draft may still be being sent: the Functions host's
timeout (Flex Consumption's default; host.json sets none)."""

DISABLED: Final = "disabled"
REFUSED: Final = "refused"


@dataclass(frozen=True, slots=True)
class Delivery:
    status: str
    mail_id: str
    attempts: int = 0
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """Delivered: Graph accepted the mail, or (no mail) the alert channels took it."""
        return self.status in (sending.SENT, sending.POSTED)


def new_id(prefix: str, now: datetime) -> str:
    """A fresh alert id (the mail's and the channels' digest id): prefix, time, random."""
    return f"{prefix}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def state_name(channel: str) -> str:
    return f"alerts-{channel}"


def rows_fingerprint(keys: Iterable[str]) -> str:
    """What an alert reports (its findings' keys, in any order), in short."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]


def pending_id(svc: Services, channel: str, rows: str | None = None) -> str | None:
    """The id of a mail of this channel that may have been sent but was never confirmed; with
    `rows` (`rows_fingerprint`), only if that mail reports the same findings: its draft holds
    what it reported then, so findings added since must go out under a new id. One pending
    without `rows` (claimed before they were kept) may report anything: a new id too."""
    entity = ServiceState(svc.tables.servicestate).get(state_name(channel))
    value = entity.fields.get("pendingId") if entity else None
    if not value or entity is None:
        return None
    if rows is not None and entity.fields.get(ROWS_FIELD) != rows:
        return None
    return str(value)


def last_sent(svc: Services, channel: str) -> tuple[str | None, object]:
    entity = ServiceState(svc.tables.servicestate).get(state_name(channel))
    if entity is None:
        return None, None
    return (str(entity.fields.get("lastId") or "") or None), entity.fields.get("lastAt")


def claim(svc: Services, channel: str, mail_id: str, rows: str | None = None) -> str | None:
    """Record `mail_id` (and `rows`, what it reports) as the channel's `pendingId` before
    anything is sent (a retry reuses the id); None when this run may send it, else why not:
    `ALREADY_SENT` (sent and confirmed) or `SENDING` (another run claimed the same `rows`
    under its own id within `DRAFT_LEASE`: both had read no pending id, and each would have
    sent its own identical mail). Written only over the state as read."""
    refusal: list[str] = []

    def claimed(fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields.get("lastId") == mail_id:
            refusal.append(sending.ALREADY_SENT)
            return None
        if fields.get("pendingId") != mail_id:
            if _sent_by_another_run(svc, fields, rows):
                refusal.append(sending.SENDING)
                return None
            _abandon(svc, fields, str(fields.get("pendingId") or ""))  # replaced: never sent now
            fields.pop(DRAFT_FIELD, None)
            fields.pop(ROWS_FIELD, None)
            _keep_abandoned(fields, [a for a in _abandoned(fields) if a[0] != mail_id])
            if rows:
                fields[ROWS_FIELD] = rows
        fields["pendingId"], fields["pendingAt"] = mail_id, svc.now()  # this run is on it: a lease
        return fields

    ServiceState(svc.tables.servicestate).change(state_name(channel), claimed)
    return refusal[0] if refusal else None


def _sent_by_another_run(svc: Services, fields: dict[str, Any], rows: str | None) -> bool:
    """The pending mail reports the same `rows` and its run claimed it within `DRAFT_LEASE`:
    it may be being sent right now."""
    claimed = fields.get("pendingAt")
    return (
        rows is not None
        and bool(fields.get("pendingId"))
        and fields.get(ROWS_FIELD) == rows
        and isinstance(claimed, datetime)
        and svc.now() - claimed < DRAFT_LEASE
    )


def _abandon(svc: Services, fields: dict[str, Any], mail_id: str) -> None:
    """Keep `mail_id` in the channel's `abandonedIds` with when a run last claimed it: a send
    after `DRAFT_LEASE` deletes its draft."""
    if mail_id and svc.settings.alert_sender:
        claimed = fields.get("pendingAt") if fields.get("pendingId") == mail_id else None
        at = claimed if isinstance(claimed, datetime) else svc.now()
        abandoned = [*str(fields.get(ABANDONED_FIELD) or "").split(), _abandoned_entry(mail_id, at)]
        fields[ABANDONED_FIELD] = " ".join(abandoned[-MAX_ABANDONED:])


def _abandoned_entry(mail_id: str, claimed_at: datetime | None) -> str:
    return f"{mail_id}@{int(claimed_at.timestamp())}" if claimed_at else mail_id


def _keep_abandoned(fields: dict[str, Any], abandoned: list[tuple[str, datetime | None]]) -> None:
    if abandoned:
        fields[ABANDONED_FIELD] = " ".join(_abandoned_entry(*a) for a in abandoned)
    else:
        fields.pop(ABANDONED_FIELD, None)


def _abandoned(fields: dict[str, Any]) -> list[tuple[str, datetime | None]]:
    """The channel's abandoned mail ids, each with when a run last claimed it (None: written
    before the lease was kept)."""
    out: list[tuple[str, datetime | None]] = []
    for entry in str(fields.get(ABANDONED_FIELD) or "").split():
        mail_id, _, at = entry.rpartition("@")
        if mail_id and at.isdigit():
            out.append((mail_id, datetime.fromtimestamp(int(at), UTC)))
        else:
            out.append((entry, None))
    return out


def confirm(svc: Services, channel: str, mail_id: str, *, sent: bool = True) -> None:
    """Advance the channel after Graph accepted `mail_id` and the ledger recorded it; with
    `sent=False`, a pending mail that is no longer news: its draft is deleted as abandoned,
    and `lastAt` stays when the channel's last mail was sent (the digest's "since")."""
    state = ServiceState(svc.tables.servicestate)
    entity = state.get(state_name(channel))
    fields = dict(entity.fields) if entity else {}
    if not sent:
        _abandon(svc, fields, mail_id)
    fields.pop("pendingId", None)
    fields.pop("pendingAt", None)
    fields.pop(DRAFT_FIELD, None)
    fields.pop(ROWS_FIELD, None)
    fields["lastId"] = mail_id
    if sent:
        fields["lastAt"] = svc.now()
    state.put(state_name(channel), fields)


async def deliver_mail(
    svc: Services,
    mail: Mail,
    *,
    channel: str,
    sleep: sending.Sleep = asyncio.sleep,
    rows: str | None = None,
) -> Delivery:
    """Send `mail` once on `channel` (see the module docstring). The caller confirms.
    `rows`: what it reports (`rows_fingerprint`), kept with its pending id."""
    if not enabled(svc):
        return Delivery(DISABLED, mail.id, reason="ALERT_SENDER is not set")
    refused = await recipients_refused(svc)
    if refused:
        return Delivery(REFUSED, mail.id, reason=refused)
    refusal = claim(svc, channel, mail.id, rows)
    if refusal == sending.ALREADY_SENT:
        log.info("alerts.already_sent", channel=channel, mail_id=mail.id)
    if refusal:
        return Delivery(refusal, mail.id)
    state = ServiceState(svc.tables.servicestate)
    entity = state.get(state_name(channel))
    fields = dict(entity.fields) if entity else {}
    crash_point(svc, "mail.after_pending")
    sender = svc.settings.alert_sender or ""
    await _delete_abandoned_drafts(svc, channel, sender, fields)
    attempt = 0
    draft_id = str(fields.get(DRAFT_FIELD) or "")
    while True:
        attempt += 1
        try:
            if not draft_id:
                draft_id = await _recorded_draft(
                    svc, channel, mail.id, sender, await _draft(svc, mail, channel, sender)
                )
                crash_point(svc, "mail.after_draft_recorded")
            went = await svc.directory.send_draft(sender, draft_id)
        except DirectoryError as error:
            if not error.is_transient or attempt >= sending.ATTEMPTS:
                log.error("alerts.send_failed", channel=channel, mail_id=mail.id,
                          status=error.status, code=error.code, attempts=attempt)  # fmt: skip
                return Delivery(sending.FAILED, mail.id, attempt, f"{error.status} {error.code}")
            wait = sending.retry_wait(attempt, error.retry_after)
            log.warning("alerts.send_retry", channel=channel, mail_id=mail.id,
                        status=error.status, wait=wait)  # fmt: skip
            await sleep(wait)
            continue
        log.info("alerts.sent" if went else "alerts.sent_before", channel=channel,
                 mail_id=mail.id, kind=mail.kind, subject=mail.subject,
                 attempts=attempt)  # fmt: skip
        crash_point(svc, "mail.after_send")
        return Delivery(sending.SENT, mail.id, attempt)


def internet_message_id(channel: str, mail: Mail, sender: str) -> str:
    """The Message-ID of `mail` on `channel`: fixed, so its draft can be found again."""
    return _message_id(channel, mail.id, sender)


def _message_id(channel: str, mail_id: str, sender: str) -> str:
    digest = hashlib.sha256(f"{channel}\n{mail_id}".encode()).hexdigest()[:32]
    return f"<license-guard.{digest}@{sender.rpartition('@')[2] or 'localhost'}>"


async def _delete_abandoned_drafts(
    svc: Services, channel: str, sender: str, fields: dict[str, Any]
) -> None:
    """Delete the drafts of the channel's replaced mails still in the sender's Drafts (see the
    module docstring). Looked up by Message-ID: a sent one has left Drafts and is not found.
    Best effort: an error leaves the rest for the next send, never fails this one."""
    abandoned = _abandoned(fields)
    if not abandoned:
        return
    now = svc.now()
    leased = [a for a in abandoned if a[1] is not None and now - a[1] < DRAFT_LEASE]
    due = [a for a in abandoned if a not in leased]  # no run can be sending these any more
    try:
        while due:
            mail_id = due[0][0]
            draft_id = await svc.directory.find_draft(sender, _message_id(channel, mail_id, sender))
            if draft_id and await svc.directory.delete_draft(sender, draft_id):
                log.info("alerts.abandoned_draft_deleted", channel=channel, mail_id=mail_id,
                         draft_id=draft_id)  # fmt: skip
            due.pop(0)
    except DirectoryError as error:
        log.warning("alerts.abandoned_draft_kept", channel=channel, status=error.status,
                    code=error.code, left=len(due))  # fmt: skip
    _keep_abandoned(fields, leased + due)
    ServiceState(svc.tables.servicestate).put(state_name(channel), fields)


async def _recorded_draft(
    svc: Services, channel: str, mail_id: str, sender: str, draft_id: str
) -> str:
    """Record `draft_id` as the pending mail's draft and return the draft to send. Another run
    sending the same mail at once (a timer that fired twice, a resumed nightly finish) may have
    recorded its own draft first: that one is sent, by both (Graph sends a draft once, the other
    meets 404), and ours deleted. A pending mail replaced meanwhile: ours is sent as it is."""
    state = ServiceState(svc.tables.servicestate)
    recorded = write_contended(partial(_record_draft, state, channel, mail_id, draft_id))
    if recorded != draft_id:
        with contextlib.suppress(DirectoryError):
            await svc.directory.delete_draft(sender, draft_id)
        log.info("alerts.draft_recorded_by_another_run", channel=channel, mail_id=mail_id,
                 draft_id=recorded)  # fmt: skip
    return recorded


def _record_draft(state: ServiceState, channel: str, mail_id: str, draft_id: str) -> str:
    """The draft to send (`_recorded_draft`): ours is recorded over the row as read."""
    entity = state.get(state_name(channel))
    if entity is None or entity.fields.get("pendingId") != mail_id:
        return draft_id
    if recorded := str(entity.fields.get(DRAFT_FIELD) or ""):
        return recorded
    state.put(state_name(channel), {**entity.fields, DRAFT_FIELD: draft_id}, entity.etag)
    return draft_id


async def _draft(svc: Services, mail: Mail, channel: str, sender: str) -> str:
    """The draft of `mail` in the sender's Drafts: the one a lost answer or a crash left
    there (looked up by its Message-ID), else a new one from the MIME message."""
    message_id = internet_message_id(channel, mail, sender)
    found = await svc.directory.find_draft(sender, message_id)
    if found:
        log.info("alerts.draft_found", channel=channel, mail_id=mail.id, draft_id=found)
        return found
    body = mime(mail, sender, svc.settings.alert_recipients, svc.now(), message_id=message_id)
    draft_id = await svc.directory.create_draft(sender, body)
    crash_point(svc, "mail.after_draft")
    return draft_id
