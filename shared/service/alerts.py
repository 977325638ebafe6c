"""Alerts: the digest, the immediate alerts, the baseline, nightly and weekly summaries.

What is alertable is decided by `shared.core.alerting` (pure); this module reads the ledger
and the facts those rules need, composes the mails (`shared.alerts.compose`), delivers them
(`shared.alerts.deliver`) and records what was mailed: `alertedIn` (and `resolvedIn`) on the
findings entities, the channel state in `servicestate`.

* `run_digest` (timer `alert_digest`): the transitions since the last digest (findings that
  became alertable, alerted findings that resolved) and the counts still open. No mail when
  nothing changed. Waits for the baseline.
* `send_tenant_alerts` (timer `tenant_alerts`): lapsing subscriptions in use, a directory sync
  older than three cycles, and the pipeline's dead-man and poison findings, mailed at once;
  and data-loss alerts that could not be sent yet (`alert_data_loss_owed`), retried until sent.
* `with_data_loss` + `alert_data_loss` (the recompute and the nightly scan): the data-loss
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
import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog

from shared.adapters.tables import (
    ConcurrencyConflict,
    Entity,
    json_field,
    parse_json_field,
)
from shared.alerts import compose
from shared.alerts.compose import MailNames, Section, Table, UserName
from shared.alerts.deliver import (
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
from shared.audit import audit_actor
from shared.catalog import catalog
from shared.core.alerting import (
    AlertFacts,
    Exclusions,
    LedgerRow,
    held_licenses,
    mass_loss,
    plan_digest,
    weekly_rows,
)
from shared.core.dataloss import (
    DATA_LOSS_RISK,
    CapabilityGrant,
    CapabilityLoss,
    capability_grants,
    data_loss_finding,
)
from shared.core.evaluate import UserReport
from shared.core.findings import (
    COUNT_VIOLATION,
    DEPENDENCY_VIOLATION,
    ERROR,
    MUTUALLY_EXCLUSIVE,
    OTHER,
    PENDING_GROUP_ASSIGNMENT,
    PLAN_MISMATCH,
    PROHIBITED_IN_USAGE_LOCATION,
    STALE_GROUP_ASSIGNMENT,
    SUBSCRIPTION_AT_RISK,
    UNIQUENESS_VIOLATION,
    Finding,
    Names,
    sku_findings,
)
from shared.core.model import Tenant
from shared.service.context import Services
from shared.service.crashpoints import crash_point
from shared.service.stores import FindingsLedger, LicensedGroups, ServiceState
from shared.service.summary import NightlySummary
from shared.snapshot import parse_snapshot

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


REPROCESSABLE: Final = frozenset(
    {
        COUNT_VIOLATION,
        MUTUALLY_EXCLUSIVE,
        PROHIBITED_IN_USAGE_LOCATION,
        PENDING_GROUP_ASSIGNMENT,
        STALE_GROUP_ASSIGNMENT,
        PLAN_MISMATCH,
    }
)
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


def _open_unalerted(svc: Services, codes: Iterable[str]) -> list[tuple[Entity, LedgerRow]]:
    wanted = set(codes)
    facts_ex = exclusions(svc)
    return [
        (e, r)
        for e, r in ledger(svc)
        if r.code in wanted and r.is_open and not r.alerted_in and not facts_ex.mutes(r)
    ]


# --------------------------------------------------------------------------- tenant level


async def send_tenant_alerts(svc: Services, *, sleep: Sleep = asyncio.sleep) -> Delivery | None:
    """Record lapsing subscriptions in use and a stale directory sync; mail every tenant-level
    finding (those two, dead-man, poison) not mailed yet, at once."""
    check_tenant(svc)
    await alert_data_loss_owed(svc, sleep=sleep)
    pairs = _open_unalerted(svc, TENANT_CODES)
    if not pairs:
        return None
    return await send_immediate(
        svc,
        channel=TENANT,
        title=f"{len(pairs)} tenant-level issue(s) need attention",
        lead=(
            "These concern the whole tenant or License Guard itself, so they are sent at "
            "once instead of waiting for the digest.",
        ),
        pairs=pairs,
        sleep=sleep,
    )


def check_tenant(svc: Services) -> None:
    now = svc.now()
    skus, _ = ServiceState(svc.tables.servicestate).skus()
    if skus:
        tenant = parse_snapshot({"subscribedSkus": skus, "groups": [], "users": []}).tenant
        names = Names(tenant, catalog().products)
        for sku in tenant.skus.values():
            found = [
                f for f in sku_findings(sku, sku.consumed, names) if f.code == SUBSCRIPTION_AT_RISK
            ]
            _set_one(
                svc,
                f"sku:{sku.id}",
                f"sku:{sku.id}|{sku.id}|{SUBSCRIPTION_AT_RISK}|-",
                found[0] if found else None,
                now,
            )
    last = ServiceState(svc.tables.servicestate).get(LAST_SYNC)
    synced = _instant(str(last.fields.get("completedAt", ""))) if last else None
    stale = None
    if synced is not None and now - synced > STALE_SYNC:
        stale = Finding(
            code=DIRECTORY_SYNC_STALE,
            severity=ERROR,
            subject="service:directory-sync",
            sku_id=None,
            group_id=None,
            message=(
                f"The last directory sync completed at {synced:%Y-%m-%d %H:%M} UTC, more than "
                "three 30-minute cycles ago: on-premises changes (joins, leavers, attributes) "
                "are not reaching Entra, so licenses are not following them."
            ),
            remedy=(
                "Check Entra Connect on the sync server (Synchronization Service Manager, "
                "Get-ADSyncScheduler) and Entra admin center > Entra Connect > Connect Sync "
                "health; then start a delta sync (Start-ADSyncSyncCycle -PolicyType Delta)."
            ),
        )
    subject = "service:directory-sync"
    _set_one(svc, subject, f"{subject}|-|{DIRECTORY_SYNC_STALE}|-", stale, now)


def _set_one(svc: Services, subject: str, key: str, finding: Finding | None, now: datetime) -> None:
    FindingsLedger(svc.tables.findings).set_one(
        subject, key, finding, now=now, run_id="tenant-check"
    )


def _instant(text: str) -> datetime | None:
    with contextlib.suppress(ValueError):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else None
    return None


# --------------------------------------------------------------------------- data-loss guard


def _grants_json(grants: Iterable[CapabilityGrant]) -> list[list[Any]]:
    return [[g.sku_id, g.plan_id, list(g.group_ids)] for g in grants]


def _grants(value: object) -> tuple[CapabilityGrant, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(CapabilityGrant(str(s), str(p), tuple(g)) for s, p, g in value)


def _cached_tenant(svc: Services) -> Tenant:
    """SKUs and licensed groups from the service's caches (plan ids and names)."""
    skus, _ = ServiceState(svc.tables.servicestate).skus()
    groups = list(LicensedGroups(svc.tables.deltalinks).groups().values())
    return parse_snapshot({"subscribedSkus": skus, "groups": groups, "users": []}).tenant


def with_data_loss(
    svc: Services, reports: Sequence[UserReport], tenant: Tenant | None = None
) -> list[UserReport]:
    """The reports, each with a `DataLossRisk` finding when the user lost a data capability
    (see the module docstring); updates the stored capability records. `tenant` gives the
    SKUs (and names); by default the service's cached SKUs and licensed groups."""
    if not reports:
        return []
    from shared.capabilities import capabilities  # noqa: PLC0415 - reads a file on first use

    capability_map = capabilities()
    tenant = tenant or _cached_tenant(svc)
    names = Names(tenant, catalog().products)
    table = svc.tables.servicestate
    now = svc.now()
    out = []
    for report in reports:
        user = report.user
        stored = table.get(CAPABILITIES_PK, user.id)
        record = parse_json_field(str(stored.fields["json"])) if stored else {}
        held_before = {c: _grants(v) for c, v in (record.get("held") or {}).items()}
        lost = dict(record.get("lost") or {})
        graph_held = held_licenses(user, tenant.skus)
        held_now: dict[str, tuple[CapabilityGrant, ...]] = {}
        for capability, plan_ids in capability_map.plans.items():
            keeps = capability_grants(report.licenses, plan_ids)
            had = capability_grants(graph_held, plan_ids) or held_before.get(capability, ())
            if keeps:
                held_now[capability] = keeps
                lost.pop(capability, None)
            elif had and capability not in lost:
                lost[capability] = {"at": now.isoformat(), "grants": _grants_json(had)}
        for capability, entry in list(lost.items()):
            at = _instant(str(entry.get("at")))
            if at is None or now - at > LOSS_KEPT:
                del lost[capability]
        new_record = {
            "held": {c: _grants_json(g) for c, g in held_now.items()},
            "lost": lost,
        }
        if new_record != record and (stored is not None or held_now or lost):
            table.upsert(CAPABILITIES_PK, user.id, {"json": json_field(new_record)})
        if lost:
            losses = [
                CapabilityLoss(user.id, c, _grants(entry.get("grants")))
                for c, entry in sorted(lost.items())
            ]
            finding = data_loss_finding(user, losses, names, dict(capability_map.labels))
            report = replace(report, findings=(*report.findings, finding))
        out.append(report)
    return out


@dataclass
class DataLossOutcome:
    users: int = 0
    mass: bool = False
    delivery: Delivery | None = None
    groups: list[str] = field(default_factory=list)


async def alert_data_loss(
    svc: Services, new_findings: Iterable[Finding], *, sleep: Sleep = asyncio.sleep
) -> DataLossOutcome:
    """Immediate alerts for new DataLossRisk findings: one mail per recompute batch, or one
    mass-loss alert when more than MASS_LOSS_THRESHOLD users lost a capability within an hour
    (later losses in that hour go to the digest)."""
    outcome = DataLossOutcome()
    if not any(f.code == DATA_LOSS_RISK for f in new_findings) or not enabled(svc):
        return outcome
    try:
        return await _alert_data_loss(svc, outcome, sleep)
    except Exception:
        # Not lost: the findings stay un-alerted in the ledger (the outbox), and the
        # tenant-alerts timer retries them (`alert_data_loss_owed`) until Graph accepts.
        # Raising would not help: the recompute's redelivery finds no *new* finding.
        log.exception("alerts.data_loss_deferred")
        return outcome


async def alert_data_loss_owed(svc: Services, *, sleep: Sleep = asyncio.sleep) -> DataLossOutcome:
    """Retry the immediate data-loss alert for open `DataLossRisk` findings of the last hour
    that no mail reported yet (Graph refused, or the worker died). Older ones are the
    digest's. Run by the tenant-alerts timer, so an alert waits minutes, not an hour."""
    outcome = DataLossOutcome()
    if not enabled(svc):
        return outcome
    now = svc.now()
    excluded = exclusions(svc)
    owed = [
        r
        for _, r in ledger(svc)
        if r.code == DATA_LOSS_RISK
        and r.is_open
        and not r.alerted_in
        and now - r.first_seen <= MASS_WINDOW
        and not excluded.mutes(r)
    ]
    if not owed:
        return outcome
    log.info("alerts.data_loss_retry", users=len(owed))
    return await _alert_data_loss(svc, outcome, sleep)


async def _alert_data_loss(
    svc: Services, outcome: DataLossOutcome, sleep: Sleep
) -> DataLossOutcome:
    now = svc.now()
    recent = [
        (e, r)
        for e, r in ledger(svc)
        if r.code == DATA_LOSS_RISK and r.is_open and now - r.first_seen <= MASS_WINDOW
    ]
    excluded = exclusions(svc)
    recent = [(e, r) for e, r in recent if not excluded.mutes(r)]
    outcome.users = len(recent)
    if mass_loss(len(recent), svc.settings.mass_loss_threshold):
        outcome.mass = True
        _, last_at = last_sent(svc, MASS_LOSS)
        if isinstance(last_at, datetime) and now - last_at < MASS_WINDOW:
            return outcome  # one mass-loss alert per hour: the digest carries the rest
        outcome.groups = _lost_via(svc, [r.subject for _, r in recent])
        outcome.delivery = await _send_mass_loss(svc, recent, outcome.groups, sleep)
        return outcome
    fresh = [(e, r) for e, r in recent if not r.alerted_in]
    outcome.delivery = await send_immediate(
        svc,
        channel=IMMEDIATE,
        title=f"data-loss risk for {len(fresh)} user(s)",
        lead=(
            "These users no longer hold a mailbox or OneDrive storage through any path. "
            "Each finding states the deadline and how to restore the license.",
        ),
        pairs=fresh,
        sleep=sleep,
    )
    return outcome


def _lost_via(svc: Services, user_ids: Iterable[str]) -> list[str]:
    """Groups whose paths granted the capabilities these users lost, most users first."""
    counts: dict[str, int] = {}
    for user_id in user_ids:
        stored = svc.tables.servicestate.get(CAPABILITIES_PK, user_id)
        record = parse_json_field(str(stored.fields["json"])) if stored else {}
        groups = {
            g
            for entry in (record.get("lost") or {}).values()
            for grant in _grants(entry.get("grants"))
            for g in grant.group_ids
            if g
        }
        for g in groups:
            counts[g] = counts.get(g, 0) + 1
    return sorted(counts, key=lambda g: (-counts[g], g))


async def _send_mass_loss(
    svc: Services,
    pairs: Sequence[tuple[Entity, LedgerRow]],
    group_ids: Sequence[str],
    sleep: Sleep,
) -> Delivery | None:
    now = svc.now()
    since = (now - MASS_WINDOW).isoformat().replace("+00:00", "Z")
    try:
        audits = await svc.directory.directory_audits(since, AUDITED_ACTIVITIES)
    except Exception as error:
        log.warning("alerts.audits_unavailable", error=str(error))
        audits = []
    names = await mail_names(svc, [r for _, r in pairs])
    group_names = [names.group(g) for g in group_ids]
    involved = set(group_ids) | {r.subject for _, r in pairs}
    audit_rows = []
    for entry in audits:
        targets = entry.get("targetResources") or []
        ids = {str(t.get("id")) for t in targets if t}
        if not ids & involved:
            continue
        target = ", ".join(
            str(t.get("displayName") or t.get("userPrincipalName") or t.get("id"))
            for t in targets
            if t
        )
        audit_rows.append(
            (
                str(entry.get("activityDateTime", "")),
                str(entry.get("activityDisplayName", "")),
                target,
                _actor(entry),
            )
        )
    actors = sorted({row[3] for row in audit_rows})
    lead = (
        f"{len(pairs)} users lost a mailbox or OneDrive capability within the last hour "
        f"(threshold {svc.settings.mass_loss_threshold}). Groups involved: "
        f"{', '.join(group_names) or 'none found (direct assignments)'}."
        + (f" Changed by: {', '.join(actors)}." if actors else ""),
        "If this was not intended, undo the change now: data tied to a removed license is "
        "deleted 30 days after the change. Further losses this hour go to the digest.",
    )
    extra = [
        Section(
            "Who changed what (Entra audit log, last hour)",
            table=Table(("When (UTC)", "Activity", "Target", "By"), tuple(audit_rows[:50])),
        )
        if audit_rows
        else Section("Who changed what", paragraphs=("No matching audit entry was found.",))
    ]
    return await send_immediate(
        svc,
        channel=MASS_LOSS,
        title=f"mass data-loss risk: {len(pairs)} users in the last hour",
        lead=lead,
        pairs=pairs,
        extra=extra,
        sleep=sleep,
    )


def _actor(entry: Mapping[str, Any]) -> str:
    return audit_actor(entry) or "unknown"


__all__ = [
    "DigestOutcome",
    "alert_data_loss",
    "alert_data_loss_owed",
    "baseline_pending",
    "run_digest",
    "send_baseline_summary",
    "send_immediate",
    "send_nightly_summary",
    "send_tenant_alerts",
    "weekly_summary",
    "with_data_loss",
]
