"""Alerts: the digest, the immediate alerts, the baseline, nightly and weekly summaries.

What is alertable is decided by `shared.core.alerting` (pure); this module reads the ledger
and the facts those rules need, composes the mails (`shared.render.mail`), delivers them
(`shared.service.alerts.deliver`) and records what was mailed: `alertedIn` (and `resolvedIn`) on the
findings entities, the channel state in `servicestate`.

* `run_digest` (timer `alert_digest`): the transitions since the last digest (findings that
  became alertable, alerted findings that resolved) and the counts still open. No mail when
  nothing changed. Waits for the baseline.
* `tenant.send_tenant_alerts` (timer): lapsing subscriptions in use, a directory sync
  older than three cycles, and the pipeline's dead-man and poison findings, mailed at once;
  and data-loss alerts that could not be sent yet (`alert_data_loss_owed`), retried until sent.
* `shared.service.dataloss` (the recompute and the nightly scan): the data-loss
  guard. A user whose mailbox or OneDrive capability drops with no other path still granting
  it; more than MASS_LOSS_THRESHOLD users within an hour is one mass-loss alert naming the
  groups and, from the directory audit log, who changed what.
* `baseline_pending`, `send_baseline_summary`, `send_nightly_summary`: called by the nightly
  reconciliation. `weekly_summary`: standing `info` findings, once per ISO week.

Data-loss detection (choice): a user *held* a capability when Graph's active assignment
states grant it now (`held_licenses`) or when the capability record stored at the user's
previous recompute says so (`servicestate`, PartitionKey `capabilities`); the user *keeps* it
when the effective licenses (from memberships) grant it. The first half catches the change
before Entra has processed it (its stale assignment is still there), the stored record after
(a small group is processed within minutes, racing our notification). A lost capability stays
recorded, with its time and former grants, until it comes back or 30 days pass, so the
`DataLossRisk` finding stays open, and resolves, with the facts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from shared.catalog.products import catalog
from shared.core.alerting import (
    AlertFacts,
    Exclusions,
    LedgerRow,
    plan_digest,
    weekly_rows,
)
from shared.core.dataloss import (
    DATA_LOSS_RISK,
)
from shared.core.findings import (
    COUNT_VIOLATION,
    DEPENDENCY_VIOLATION,
    MUTUALLY_EXCLUSIVE,
    OTHER,
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    PROHIBITED_IN_USAGE_LOCATION,
    STALE_GROUP_ASSIGNMENT,
    SUBSCRIPTION_AT_RISK,
    UNIQUENESS_VIOLATION,
)
from shared.core.nightly_summary import NightlySummary
from shared.core.reprocess import REPROCESSABLE
from shared.ports.tables import ConcurrencyConflict, Entity, parse_json_field
from shared.render import mail as compose
from shared.render.mail import MailNames, Section, UserName
from shared.service.alerts.deliver import (
    ALREADY_SENT,
    Delivery,
    Sleep,
    confirm,
    deliver,
    enabled,
    last_sent,
    pending_id,
    tenant_name,
)
from shared.service.crashpoints import crash_point
from shared.service.services import Services
from shared.service.stores import LicensedGroups, ServiceState

log = structlog.get_logger(__name__)

DIGEST: Final = "digest"
IMMEDIATE: Final = "immediate"
MASS_LOSS: Final = "massloss"
TENANT: Final = "tenant"
BASELINE: Final = "baseline"
NIGHTLY: Final = "nightly"
WEEKLY: Final = "weekly"
BASELINE_STATE: Final = "alerts-baseline-done"
CAPABILITIES_PK: Final = "capabilities"
LAST_SYNC: Final = "last-sync"  # shared.service.watch.LAST_SYNC (not imported: import cycle)
SYNC_CYCLE: Final = timedelta(minutes=30)
STALE_SYNC: Final = 3 * SYNC_CYCLE
MASS_WINDOW: Final = timedelta(hours=1)
LOSS_KEPT: Final = timedelta(days=30)
DIRECTORY_SYNC_STALE: Final = "DirectorySyncStale"
TENANT_CODES: Final = frozenset(
    {
        SUBSCRIPTION_AT_RISK,
        DIRECTORY_SYNC_STALE,
        "NotificationsSilent",
        "SubscriptionMissing",
        "PoisonedMessage",
        "AlertRecipientsRefused",
        "AlertChannelFailing",
    }
)
AUDITED_ACTIVITIES: Final = (
    "Set group license",
    "Remove member from group",
    "Delete group",
    "Change user license",
    "Update group",
)

Key = tuple[str | None, str | None, str]


# --------------------------------------------------------------------------- ledger rows


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def ledger_row(entity: Entity) -> LedgerRow:
    f = entity.fields
    user_ids = parse_json_field(str(f["userIds"])) if f.get("userIds") else []
    return LedgerRow(
        key=str(f.get("key") or entity.row_key),
        subject=str(f.get("key") or entity.row_key).split("|")[0],
        code=str(f.get("code") or ""),
        severity=str(f.get("severity") or ""),
        sku_id=str(f["skuId"]) if f.get("skuId") else None,
        group_id=str(f["groupId"]) if f.get("groupId") else None,
        message=str(f.get("message") or ""),
        remedy=str(f.get("remedy") or ""),
        first_seen=_time(f.get("firstSeen"))
        or _time(f.get("lastSeen"))
        or datetime.min.replace(tzinfo=UTC),
        last_seen=_time(f.get("lastSeen")),
        resolved_at=_time(f.get("resolvedAt")),
        alerted_in=str(f["alertedIn"]) if f.get("alertedIn") else None,
        resolved_in=str(f["resolvedIn"]) if f.get("resolvedIn") else None,
        reprocess_queued_at=_time(f.get("reprocessQueuedAt")),
        user_ids=tuple(str(u) for u in user_ids),
    )


def ledger(svc: Services) -> list[tuple[Entity, LedgerRow]]:
    return [(e, ledger_row(e)) for e in svc.tables.findings.query_all()]


def _mark(svc: Services, entities: Iterable[Entity], field_name: str, mail_id: str) -> None:
    """Record on each finding entity that `mail_id` reported it (optimistic; one re-read)."""
    table = svc.tables.findings
    for entity in entities:
        current: Entity | None = entity
        for _ in range(3):
            if current is None:
                break
            fields = dict(current.fields) | {field_name: mail_id}
            try:
                table.update(current.partition_key, current.row_key, fields, etag=current.etag)
                break
            except ConcurrencyConflict:
                current = table.get(current.partition_key, current.row_key)


# --------------------------------------------------------------------------- facts and names


def exclusions(svc: Services) -> Exclusions:
    s = svc.settings
    return Exclusions(s.alert_exclude_skus, s.alert_exclude_groups, s.alert_exclude_users)


async def alert_facts(svc: Services, rows: Sequence[LedgerRow]) -> AlertFacts:
    s = svc.settings
    groups = LicensedGroups(svc.tables.deltalinks).groups()
    processing = {gid: _processing(g.get("licenseProcessingState")) for gid, g in groups.items()}
    memberships: dict[str, frozenset[str]] = {}
    for row in rows:
        if row.is_open and row.code == MUTUALLY_EXCLUSIVE and row.user_id:
            memberships[row.user_id] = frozenset(
                gid for gid in groups if svc.tables.groupmembers.get(gid, row.user_id) is not None
            )
    upns: dict[str, str] = {}
    if any("@" in u for u in s.alert_exclude_users):
        ids = sorted({r.user_id for r in rows if r.is_open and r.user_id})
        users = await svc.directory.users_by_id(ids) if ids else {}
        upns = {uid: str(u.get("userPrincipalName") or "") for uid, u in users.items()}
    return AlertFacts(
        now=svc.now(),
        grace=timedelta(minutes=s.alert_grace_minutes),
        swap_grace=timedelta(days=s.swap_grace_days),
        group_processing=processing,
        memberships=memberships,
        exclusions=exclusions(svc),
        upns=upns,
    )


def _processing(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("state")
    return str(value) if value else None


async def mail_names(svc: Services, rows: Sequence[LedgerRow]) -> MailNames:
    """Display names and UPNs of the users the mail names (at most 20 per line), group names
    and friendly product names."""
    per_line: dict[Key, list[str]] = {}
    for row in rows:
        ids = per_line.setdefault((row.group_id, row.sku_id, row.code), [])
        for uid in (row.user_id, *row.user_ids):
            if uid and uid not in ids and len(ids) < compose.MAX_NAMED_USERS:
                ids.append(uid)
    wanted = sorted({u for ids in per_line.values() for u in ids})
    users = await svc.directory.users_by_id(wanted) if wanted else {}
    groups = {
        gid: str(g.get("displayName") or gid)
        for gid, g in LicensedGroups(svc.tables.deltalinks).groups().items()
    }
    missing = sorted({r.group_id for r in rows if r.group_id and r.group_id not in groups})
    if missing:
        found = await svc.directory.groups_by_id(missing)
        groups |= {gid: str(g.get("displayName") or gid) for gid, g in found.items()}
    return MailNames(
        tenant_name=await tenant_name(svc),
        users={
            uid: UserName(str(u.get("displayName") or uid), str(u.get("userPrincipalName") or ""))
            for uid, u in users.items()
        },
        groups=groups,
        products=product_names(svc),
    )


def product_names(svc: Services) -> dict[str, str]:
    skus, _ = ServiceState(svc.tables.servicestate).skus()
    names = catalog()
    out = {}
    for sku in skus:
        part = str(sku.get("skuPartNumber") or sku["skuId"])
        friendly = names.product(str(sku["skuId"]), part)
        out[str(sku["skuId"])] = f"{friendly} ({part})" if friendly != part else part
    return out


_ACTION: Final = {
    COUNT_VIOLATION: "reprocesses the waiting users automatically once seats are free "
    "(oldest errors first); Entra does not retry by itself",
    MUTUALLY_EXCLUSIVE: "did not reprocess: it would fail the same way until one license is "
    "chosen; it reprocesses once it sees the conflict change",
    PROHIBITED_IN_USAGE_LOCATION: "did not reprocess: it would fail the same way until the "
    "usage location changes; it reprocesses once it does",
    PENDING_GROUP_ASSIGNMENT: "reprocesses once the group shows ProcessingComplete "
    "(once per processing run)",
    STALE_GROUP_ASSIGNMENT: "reprocesses once the group shows ProcessingComplete "
    "(once per processing run)",
    PLAN_MISMATCH: "reprocesses once the group shows ProcessingComplete (once per processing run)",
    UNIQUENESS_VIOLATION: "deliberately does not reprocess: a reprocess cannot fix a "
    "duplicate proxy address; it reprocesses after the fix is seen",
    DEPENDENCY_VIOLATION: "deliberately does not reprocess: the dependent plans must be "
    "handled first",
    OTHER: "deliberately does not reprocess an unclassified error: read the audit log first",
    DATA_LOSS_RISK: "changes nothing here: restoring the license is an admin's decision",
}


def actions(svc: Services, rows: Iterable[LedgerRow]) -> dict[Key, str]:
    """Per group x SKU x code: whether License Guard queued a reprocess, would (observe), or
    deliberately did not, and why."""
    by_key: dict[Key, list[LedgerRow]] = {}
    for row in rows:
        by_key.setdefault((row.group_id, row.sku_id, row.code), []).append(row)
    out = {}
    for key, items in by_key.items():
        group_id, _, code = key
        queued = [r for r in items if r.reprocess_queued_at]
        blocked = svc.settings.write_blocked_reason(frozenset({group_id} if group_id else ()))
        if queued:
            latest = max(r.reprocess_queued_at for r in queued if r.reprocess_queued_at)
            out[key] = (
                f"queued a reprocess for {len(queued)} of {len(items)} "
                f"(latest {latest:%Y-%m-%d %H:%M} UTC)"
            )
        elif code in REPROCESSABLE and blocked:
            out[key] = f"would reprocess when the cause clears, but writes nothing: {blocked}"
        elif code in _ACTION:
            out[key] = _ACTION[code]
    return out


def mode_note(svc: Services) -> str:
    s = svc.settings
    if s.writes_disabled:
        return "Writes are disabled (WRITES_DISABLED): License Guard changes nothing in the tenant."
    if s.mode == "observe":
        return (
            "Mode: observe. License Guard records and reports; it writes nothing to the tenant "
            "('would reprocess' says what act mode would do)."
        )
    allow = " for the groups in ACT_GROUP_ALLOWLIST" if s.act_group_allowlist else ""
    return f"Mode: act. License Guard reprocesses users when the cause has cleared{allow}."


def _new_id(prefix: str, now: datetime) -> str:
    return f"{prefix}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- baseline


def baseline_pending(svc: Services) -> bool:
    """True until a baseline was recorded, and again for each new `BASELINE=reset…` value."""
    setting = svc.settings.baseline
    if setting == "off":
        return False
    entity = ServiceState(svc.tables.servicestate).get(BASELINE_STATE)
    if entity is None:
        return True
    return bool(setting) and entity.fields.get("resetToken") != setting


def record_baseline(svc: Services, run_id: str) -> list[LedgerRow]:
    """Mark every open finding as known (so digests report only later changes); return them."""
    mail_id = f"baseline-{run_id}"
    rows = []
    marked = []
    for entity, row in ledger(svc):
        if row.is_open:
            rows.append(row)
            if not row.alerted_in:
                marked.append(entity)
    _mark(svc, marked, "alertedIn", mail_id)
    return rows


async def send_baseline_summary(
    svc: Services,
    summary: NightlySummary | None = None,
    *,
    run_id: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Delivery | None:
    """The reconciliation's baseline is done: mark what it found, mail "baseline: N existing
    issues, by group × SKU × code" once, and record the baseline (even if mail is off)."""
    run = run_id or (summary.run_id if summary else _new_id("run", svc.now()))
    rows = record_baseline(svc, run)
    delivery = None
    if enabled(svc):
        names = await mail_names(svc, [])
        if summary is not None:
            names = replace(names, tenant_name=summary.tenant_name or names.tenant_name)
        mail = compose.baseline_mail(mail_id=f"baseline-{run}", names=names, rows=rows)
        delivery = await deliver(svc, mail, channel=BASELINE, sleep=sleep)
        if delivery.accepted:
            confirm(svc, BASELINE, mail.id)
    ServiceState(svc.tables.servicestate).put(
        BASELINE_STATE,
        {
            "doneAt": svc.now(),
            "runId": run,
            "issues": len(rows),
            "resetToken": svc.settings.baseline or None,
        },
    )
    log.info("alerts.baseline", run_id=run, issues=len(rows))
    return delivery


# --------------------------------------------------------------------------- the digest


@dataclass
class DigestOutcome:
    status: str
    mail_id: str | None = None
    new: int = 0
    resolved: int = 0
    still_open: int = 0
    weekly: Delivery | None = None


async def run_digest(svc: Services, *, sleep: Sleep = asyncio.sleep) -> DigestOutcome:
    """One digest of the transitions since the last one; none when nothing changed."""
    if not enabled(svc):
        return DigestOutcome("disabled")
    if baseline_pending(svc):
        log.info("alerts.digest_waits_for_baseline")
        return DigestOutcome("waiting-for-baseline")
    pairs = ledger(svc)
    rows = [r for _, r in pairs]
    facts = await alert_facts(svc, rows)
    plan = plan_digest(rows, facts)
    pending = pending_id(svc, DIGEST)
    if pending and any(pending in (r.alerted_in, r.resolved_in) for r in rows):
        confirm(svc, DIGEST, pending)  # accepted and recorded before a crash: done
        pending = None
    weekly = await weekly_summary(svc, sleep=sleep, facts=facts, rows=rows)
    if plan.empty:
        if pending:
            confirm(svc, DIGEST, pending)
        log.info("alerts.digest_nothing_new", still_open=plan.open_total)
        return DigestOutcome("nothing-new", still_open=plan.open_total, weekly=weekly)
    mail_id = pending or _new_id("digest", svc.now())
    shown = [*plan.new, *plan.resolved]
    names = await mail_names(svc, shown)
    _, last_at = last_sent(svc, DIGEST)
    mail = compose.digest_mail(
        mail_id=mail_id,
        names=names,
        new=plan.new,
        resolved=plan.resolved,
        still_open=sum(plan.still_open.values()),
        waiting=plan.waiting,
        muted=plan.muted,
        actions=actions(svc, plan.new),
        mode_note=mode_note(svc),
        since=f"{last_at:%Y-%m-%d %H:%M} UTC" if isinstance(last_at, datetime) else None,
        first_since="License Guard started watching"
        if svc.settings.baseline == "off"
        else "the baseline summary",
    )
    delivery = await deliver(svc, mail, channel=DIGEST, sleep=sleep)
    outcome = DigestOutcome(
        delivery.status, mail_id, len(plan.new), len(plan.resolved), plan.open_total, weekly
    )
    if not delivery.accepted:
        return outcome
    entities = {r.key: e for e, r in pairs}
    _mark(svc, (entities[r.key] for r in plan.new), "alertedIn", mail_id)
    _mark(svc, (entities[r.key] for r in plan.resolved), "resolvedIn", mail_id)
    crash_point(svc, "digest.after_mark")
    confirm(svc, DIGEST, mail_id)
    return outcome


async def weekly_summary(
    svc: Services,
    *,
    sleep: Sleep = asyncio.sleep,
    facts: AlertFacts | None = None,
    rows: Sequence[LedgerRow] | None = None,
) -> Delivery | None:
    """Standing `info` findings, one mail per ISO week (sent by the first digest run of the
    week; none when there are none)."""
    if not enabled(svc) or baseline_pending(svc):
        return None
    year, week, _ = svc.now().isocalendar()
    label = f"{year}-W{week:02d}"
    mail_id = f"weekly-{label}"
    if last_sent(svc, WEEKLY)[0] == mail_id:
        return None
    rows = rows if rows is not None else [r for _, r in ledger(svc)]
    facts = facts or await alert_facts(svc, rows)
    info = weekly_rows(rows, facts)
    if not info:
        return None
    names = await mail_names(svc, info)
    mail = compose.weekly_mail(mail_id=mail_id, names=names, rows=info, week=label)
    delivery = await deliver(svc, mail, channel=WEEKLY, sleep=sleep)
    if delivery.accepted:
        confirm(svc, WEEKLY, mail_id)
    return delivery


# --------------------------------------------------------------------------- nightly


async def send_nightly_summary(
    svc: Services, summary: NightlySummary, *, sleep: Sleep = asyncio.sleep
) -> Delivery | None:
    """The nightly reconciliation's summary, one mail per date (idempotent by its id)."""
    if not enabled(svc):
        return None
    mail = compose.nightly_mail(mail_id=f"nightly-{summary.date}", summary=summary)
    delivery = await deliver(svc, mail, channel=NIGHTLY, sleep=sleep)
    if delivery.accepted:
        confirm(svc, NIGHTLY, mail.id)
    return delivery


# --------------------------------------------------------------------------- immediate


async def send_immediate(
    svc: Services,
    *,
    channel: str,
    title: str,
    lead: Sequence[str],
    pairs: Sequence[tuple[Entity, LedgerRow]],
    extra: Sequence[Section] = (),
    sleep: Sleep = asyncio.sleep,
) -> Delivery | None:
    """One immediate mail about these findings; marks them `alertedIn` once Graph accepted."""
    if not pairs or not enabled(svc):
        return None
    rows = [r for _, r in pairs]
    pending = pending_id(svc, channel)
    if pending and any(r.alerted_in == pending for r in rows):
        pending = None
    mail_id = pending or _new_id(channel, svc.now())
    names = await mail_names(svc, rows)
    mail = compose.immediate_mail(
        mail_id=mail_id,
        names=names,
        title=title,
        rows=rows,
        lead=lead,
        actions=actions(svc, rows),
        extra=extra,
        mode_note=mode_note(svc),
    )
    delivery = await deliver(svc, mail, channel=channel, sleep=sleep)
    if delivery.accepted or delivery.status == ALREADY_SENT:
        _mark(svc, (e for e, _ in pairs), "alertedIn", mail_id)
        crash_point(svc, "immediate.after_mark")
        confirm(svc, channel, mail_id)
    return delivery


def open_unalerted(svc: Services, codes: Iterable[str]) -> list[tuple[Entity, LedgerRow]]:
    wanted = set(codes)
    facts_ex = exclusions(svc)
    return [
        (e, r)
        for e, r in ledger(svc)
        if r.code in wanted and r.is_open and not r.alerted_in and not facts_ex.mutes(r)
    ]
