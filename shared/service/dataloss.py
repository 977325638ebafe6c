"""The data-loss guard: alert when a user is about to lose a mailbox or files (a data-holding
plan removed), immediately per user and once per mass-loss event, naming who changed what.

Used by the recompute and the nightly scan. A user whose mailbox or OneDrive capability drops
with no other path still granting it; more than MASS_LOSS_THRESHOLD users within an hour is
one mass-loss alert naming the groups and, from the directory audit log, who changed what.

Detection (choice): a user *held* a capability when Graph's active assignment states grant it
now (`held_licenses`) or when the capability record stored at the user's previous recompute
says so (`servicestate`, PartitionKey `capabilities`: recorded once Graph has shown it held,
so a first license still pending, then failing, is no loss); the user *keeps* it when the effective
licenses (from memberships) grant it through a path Graph does not show in state Error
(`granting_licenses`: a new group without a free seat grants nothing). The first half catches
the change before Entra has processed it (its stale assignment is still there), the stored
record after (a small group is processed within minutes, racing our notification). A lost
capability stays recorded, with its time and former grants, until it comes back (Graph shows
it through a path that grants it: not a plan re-enabled but not processed yet) or its time is
up (`LOSS_OPEN_FOR`: 30 days for a mailbox, 93 for a OneDrive), so the `DataLossRisk` finding
stays open, and resolves, with the facts. A loss whose time is up stays recorded (no finding,
no alert) while Graph still shows the stale license it was found from, so that same evidence
is not found as a new loss with a fresh deadline every period; a record with nothing held and
nothing lost is removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import structlog

from shared.adapters.world_document import core_groups
from shared.catalog.products import catalog
from shared.core.alerting import (
    granting_licenses,
    held_licenses,
    mass_loss,
)
from shared.core.dataloss import (
    DATA_LOSS_RISK,
    LOSS_OPEN_FOR,
    RETENTION_DAYS,
    CapabilityGrant,
    CapabilityLoss,
    capability_grants,
    data_loss_finding,
)
from shared.core.evaluate import UserReport
from shared.core.findings import (
    Finding,
    Names,
)
from shared.core.graph_values import graph_time_or_none
from shared.core.model import Tenant
from shared.ports.tables import (
    json_field,
    parse_json_field,
)
from shared.service.alerts.deliver import alerts_on
from shared.service.alerts.immediate import send_immediate
from shared.service.alerts.mail_delivery import Delivery, last_sent
from shared.service.alerts.sending import ALREADY_SENT, Sleep
from shared.service.earlier_losses import note_earlier_losses
from shared.service.mass_loss import MASS_LOSS, send_mass_loss
from shared.service.recent_losses import (
    MASS_WINDOW,
    RECENT_KEPT,
    RECENT_LOSSES_PK,
    RecentLosses,
    note_loss,
    recent_losses,
)
from shared.service.services import Services
from shared.service.stores import LicensedGroups, ServiceState
from shared.service.stores.contention import write_contended
from shared.service.stores.read_times import READ_AT, written_after

log = structlog.get_logger(__name__)

IMMEDIATE: Final = "immediate"
CAPABILITIES_PK: Final = "capabilities"


def _grants_json(grants: Iterable[CapabilityGrant]) -> list[list[Any]]:
    return [[g.sku_id, g.plan_id, list(g.group_ids)] for g in grants]


def _grants(value: object) -> tuple[CapabilityGrant, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(CapabilityGrant(str(s), str(p), tuple(g)) for s, p, g in value)


def _cached_tenant(svc: Services) -> Tenant:
    """SKUs and licensed groups from the service's caches (plan ids and names)."""
    skus, _ = ServiceState(svc.tables.servicestate).skus()
    configs = LicensedGroups(svc.tables.deltalinks).configs()
    return Tenant(skus, core_groups(configs.values(), skus, {}), {}, None)


def with_data_loss(
    svc: Services,
    reports: Sequence[UserReport],
    tenant: Tenant | None = None,
    *,
    write: bool = True,
    read_at: datetime | None = None,
    new_losses: set[str] | None = None,
) -> list[UserReport]:
    """The reports, each with a `DataLossRisk` finding when the user lost a data capability
    (see the module docstring); updates the stored capability records unless `write` is off
    (a dry run). `tenant` gives the SKUs (and names); by default the service's cached SKUs and
    licensed groups. `read_at`: when the users were read from Graph (`_lost_capabilities`).
    `new_losses`: the caller alerts on new losses (a first one, or one more beside a loss
    still open: no new finding, yet an alert is owed); each is noted for the alert's outbox
    (`recent_losses`) and its user added here. None (a baseline, which alerts nothing) notes
    none: the tenant-alerts timer would mail them as owed."""
    if not reports:
        return []
    from shared.catalog.capabilities import capabilities  # noqa: PLC0415 - reads a file on first use

    capability_map = capabilities()
    tenant = tenant or _cached_tenant(svc)
    names = Names(tenant, catalog().products)
    out = []
    for report in reports:
        user = report.user
        lost = _lost_capabilities(
            svc, report, tenant, capability_map.plans, read_at, write, new_losses
        )
        if lost:
            losses = [
                CapabilityLoss(
                    user.id,
                    c,
                    _grants(entry.get("grants")),
                    graph_time_or_none(entry.get("at")),
                    applied=entry.get("applied") is True,
                )
                for c, entry in sorted(lost.items())
            ]
            finding = data_loss_finding(user, losses, names, dict(capability_map.labels))
            report = report.with_finding(finding)
        out.append(report)
    return out


def _lost_capabilities(
    svc: Services,
    report: UserReport,
    tenant: Tenant,
    plans: Mapping[str, frozenset[str]],
    read_at: datetime | None,
    write: bool,
    new_losses: set[str] | None = None,
) -> dict[str, Any]:
    """The user's lost capabilities, their record brought up to date (written unless `write`
    is off) only over the record as read: one written meanwhile is read again, and one written
    from a later read of Graph than `read_at` stands as it is (an earlier read would end the
    loss that later read found, and the next recompute find it anew with a later deadline)."""
    table, user, now = svc.tables.servicestate, report.user, svc.now()
    graph_held = held_licenses(user, tenant.skus)
    granting = granting_licenses(user, report.licenses)

    def attempt() -> dict[str, Any]:
        stored = table.get(CAPABILITIES_PK, user.id)
        record = parse_json_field(str(stored.fields["json"])) if stored else {}
        held_before = {c: _grants(v) for c, v in (record.get("held") or {}).items()}
        lost = dict(record.get("lost") or {})
        if stored is not None and written_after(stored, read_at):
            return kept_losses(lost, now)
        # A loss joining others still open: its finding was alerted already, this one is owed.
        again = bool(kept_losses(lost, now))
        held_now: dict[str, tuple[CapabilityGrant, ...]] = {}
        still_shown: set[str] = set()
        for capability, plan_ids in plans.items():
            keeps = capability_grants(granting, plan_ids)
            shown = capability_grants(graph_held, plan_ids)
            if shown:
                still_shown.add(capability)
            had = shown or held_before.get(capability, ())
            if keeps:
                # Held once Graph shows it held (through any path: the old group of a swap
                # not processed yet counts); a first license still pending (or already in
                # error) gave nothing yet, so its failing later is no loss. A loss ends once
                # Graph shows the capability through a path that grants it now, not while the
                # path that is to restore it is pending (a plan re-enabled in the group).
                if (
                    _through(keeps, shown)
                    if capability in lost
                    else capability in held_before or bool(shown)
                ):
                    # What held it: the granting paths Graph shows, else what held it before
                    # (the new group of a swap is pending: its failing loses the old one's).
                    held_now[capability] = (
                        _shown_grants(keeps, shown) or held_before.get(capability) or shown
                    )
                    lost.pop(capability, None)
            elif had and capability not in lost:
                lost[capability] = {
                    "at": now.isoformat(),
                    "grants": _grants_json(had),
                    "applied": not shown,  # Entra had removed it: the loss began before now
                }
                if write and new_losses is not None:  # before the record: once that is
                    note_loss(table, user, now, again=again)  # written, the loss is not new
                    new_losses.add(user.id)
        # A loss past its kept period is over, yet stays recorded (no finding) while Graph
        # still shows the stale license that was its evidence: dropped, that same evidence
        # would be found as a new loss, with a fresh deadline and alert, every period.
        kept = kept_losses(lost, now)
        lost = {c: e for c, e in lost.items() if c in kept or c in still_shown}
        new_record = {
            "held": {c: _grants_json(g) for c, g in held_now.items()},
            "lost": lost,
        }
        empty = not held_now and not lost
        if not write or (stored is None and empty) or (new_record == record and not empty):
            return kept
        fields = {"json": json_field(new_record), READ_AT: read_at}
        if stored is not None and empty:  # nothing left to keep (an earlier version kept it)
            table.delete(CAPABILITIES_PK, user.id, etag=stored.etag)
        elif stored is None:
            table.insert(CAPABILITIES_PK, user.id, fields)
        else:
            table.update(CAPABILITIES_PK, user.id, fields, etag=stored.etag)
        return kept

    return write_contended(attempt)


def _through(keeps: Iterable[CapabilityGrant], shown: Iterable[CapabilityGrant]) -> bool:
    """Some plan a path grants now is one Graph shows held through that same path."""
    return bool(_shown_grants(keeps, shown))


def _shown_grants(
    keeps: Iterable[CapabilityGrant], shown: Iterable[CapabilityGrant]
) -> tuple[CapabilityGrant, ...]:
    """The granting paths (of `keeps`) that Graph shows holding their plan (`shown`)."""
    held = {(g.sku_id, g.plan_id.lower(), path) for g in shown for path in g.group_ids}
    out = []
    for grant in keeps:
        paths = tuple(
            p for p in grant.group_ids if (grant.sku_id, grant.plan_id.lower(), p) in held
        )
        if paths:
            out.append(CapabilityGrant(grant.sku_id, grant.plan_id, paths))
    return tuple(out)


def kept_losses(lost: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The losses still kept: each for as long as restoring the license undoes it
    (`LOSS_OPEN_FOR`: the mailbox 30 days, the OneDrive 93)."""
    return {
        capability: entry
        for capability, entry in lost.items()
        if (at := graph_time_or_none(str(entry.get("at")))) is not None
        and now - at <= LOSS_OPEN_FOR.get(capability, RETENTION_DAYS)
    }


@dataclass
class DataLossOutcome:
    users: int = 0
    mass: bool = False
    delivery: Delivery | None = None
    groups: list[str] = field(default_factory=list)


async def alert_data_loss(
    svc: Services,
    new_findings: Iterable[Finding],
    *,
    new_losses: bool = False,
    sleep: Sleep = asyncio.sleep,
) -> DataLossOutcome:
    """Immediate alerts for new DataLossRisk findings, and for losses recorded now beside a
    user's open one (`new_losses`: the finding is not new, the mailbox lost after the OneDrive
    is): one mail per recompute batch, or one mass-loss alert when more than
    MASS_LOSS_THRESHOLD users lost a capability within an hour (later losses in that hour go
    to the digest)."""
    outcome = DataLossOutcome()
    if not new_losses and not any(f.code == DATA_LOSS_RISK for f in new_findings):
        return outcome
    if not alerts_on(svc):
        return outcome
    try:
        return await _alert_data_loss(svc, recent_losses(svc), outcome, sleep)
    except Exception:
        # Not lost: the findings stay un-alerted in the ledger (the outbox), and the
        # tenant-alerts timer retries them (`alert_data_loss_owed`) until Graph accepts.
        # Raising would not help: the recompute's redelivery finds no *new* finding.
        log.exception("alerts.data_loss_deferred")
        return outcome


async def alert_data_loss_owed(svc: Services, *, sleep: Sleep = asyncio.sleep) -> DataLossOutcome:
    """Retry the immediate data-loss alert for losses of the last hour that no mail reported
    yet (Graph refused, or the worker died): open `DataLossRisk` findings not alerted, and
    losses that joined an alerted one (`AGAIN`). Older ones are the digest's. Run by the
    tenant-alerts timer, so an alert waits minutes, not an hour."""
    outcome = DataLossOutcome()
    if not alerts_on(svc):
        return outcome
    await note_earlier_losses(svc, partition=RECENT_LOSSES_PK, window=RECENT_KEPT)
    recent = recent_losses(svc)
    owed = recent.owed()
    if not owed:
        return outcome
    log.info("alerts.data_loss_retry", users=len(owed))
    return await _alert_data_loss(svc, recent, outcome, sleep)


async def _alert_data_loss(
    svc: Services,
    recent: RecentLosses,
    outcome: DataLossOutcome,
    sleep: Sleep,
) -> DataLossOutcome:
    now = svc.now()
    outcome.users = len(recent.pairs)
    if mass_loss(len(recent.pairs), svc.settings.mass_loss_threshold):
        outcome.mass = True
        _, last_at = last_sent(svc, MASS_LOSS)
        if isinstance(last_at, datetime) and now - last_at < MASS_WINDOW:
            return outcome  # one mass-loss alert per hour: the digest carries the rest
        outcome.groups = _lost_via(svc, [r.subject for _, r in recent.pairs])
        mailed = recent.pairs
        outcome.delivery = await send_mass_loss(svc, mailed, outcome.groups, sleep)
    else:
        mailed = recent.owed()
        outcome.delivery = await send_immediate(
            svc,
            channel=IMMEDIATE,
            kind="data-loss",
            title=f"data-loss risk for {len(mailed)} user(s)",
            lead=(
                "These users no longer hold a mailbox or OneDrive storage through any path. "
                "Each finding states the deadline and how to restore the license.",
            ),
            pairs=mailed,
            sleep=sleep,
        )
    delivery = outcome.delivery
    if delivery is not None and (delivery.accepted or delivery.status == ALREADY_SENT):
        recent.carried(svc, mailed)
    return outcome


def _lost_via(svc: Services, user_ids: Iterable[str]) -> list[str]:
    """Groups whose paths granted the capabilities these users lost, most users first."""
    counts: dict[str, int] = {}
    for user_id in user_ids:
        stored = svc.tables.servicestate.get(CAPABILITIES_PK, user_id)
        record = parse_json_field(str(stored.fields["json"])) if stored else {}
        groups = {
            g
            for entry in kept_losses(record.get("lost") or {}, svc.now()).values()
            for grant in _grants(entry.get("grants"))
            for g in grant.group_ids
            if g
        }
        for g in groups:
            counts[g] = counts.get(g, 0) + 1
    return sorted(counts, key=lambda g: (-counts[g], g))
