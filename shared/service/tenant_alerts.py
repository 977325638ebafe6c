"""Tenant-level alerts (timer `tenant_alerts`): lapsing subscriptions in use and a stale
directory sync are recorded, and every tenant-level finding (those, dead-man, poison, refused
recipients, failing channels, reprocesses Graph refuses) is alerted at once; data-loss alerts
that could not be sent yet are retried (`shared.service.dataloss.alert_data_loss_owed`), and
so are nightly summaries Graph refused (`shared.service.reconcile.owed_summaries`).

Apart from `shared.service.alerts` because it uses the data-loss guard, which uses the alerts.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Final

from shared.catalog.products import catalog
from shared.core.findings import (
    SUBSCRIPTION_AT_RISK,
    Finding,
    Names,
    service_finding,
)
from shared.core.model import Tenant
from shared.core.sku_findings import sku_findings
from shared.service.alerts.channels import CHANNEL_FAILING, resolve_removed_channels
from shared.service.alerts.immediate import open_unalerted, send_immediate
from shared.service.alerts.mail_delivery import Delivery
from shared.service.alerts.mail_gate import RECIPIENTS_REFUSED
from shared.service.alerts.sending import Sleep
from shared.service.dataloss import alert_data_loss_owed
from shared.service.poison_watch import (
    NOTIFICATIONS_SILENT,
    POISONED_MESSAGE,
    SUBSCRIPTION_MISSING,
    PoisonOutcome,
    run_poison_watch,
)
from shared.service.reconcile.owed_summaries import send_owed_summaries
from shared.service.reconcile.run_state import DONE, LAST, load_run
from shared.service.refused_writes import WRITES_REFUSED
from shared.service.services import Services
from shared.service.stores import FindingsLedger, ServiceState
from shared.service.watch import last_directory_sync

TENANT: Final = "tenant"
SYNC_CYCLE: Final = timedelta(minutes=30)
STALE_SYNC: Final = 3 * SYNC_CYCLE
DELTA_SYNC_WITHIN: Final = timedelta(days=7)
"""Entra Connect Sync: Scheduler (Learn): past this since the last sync, run a full sync."""
DIRECTORY_SYNC_STALE: Final = "DirectorySyncStale"
RECONCILE_OVERDUE: Final = "ReconcileOverdue"
TENANT_CODES: Final = frozenset(
    {
        SUBSCRIPTION_AT_RISK,
        DIRECTORY_SYNC_STALE,
        RECONCILE_OVERDUE,
        NOTIFICATIONS_SILENT,
        SUBSCRIPTION_MISSING,
        POISONED_MESSAGE,
        RECIPIENTS_REFUSED,
        CHANNEL_FAILING,
        WRITES_REFUSED,
    }
)


async def send_tenant_alerts(svc: Services, *, sleep: Sleep = asyncio.sleep) -> Delivery | None:
    """Record lapsing subscriptions in use and a stale directory sync; mail every tenant-level
    finding (those two, dead-man, poison) not mailed yet, at once; send owed summaries."""
    check_tenant(svc)
    await alert_data_loss_owed(svc, sleep=sleep)
    delivery = await _tenant_alert(svc, sleep)
    await send_owed_summaries(svc, sleep=sleep)  # last: the alerts above are more urgent
    return delivery


async def watch_poison_and_alert(svc: Services, *, sleep: Sleep = asyncio.sleep) -> PoisonOutcome:
    """The poison-watch timer: `run_poison_watch`, then what it found new is mailed at once.
    This timer fires on the tenant alerts' schedule, and their run usually reads the ledger
    before this one (which asks Graph first) records: left to them, a poisoned message or a
    missing subscription waited a whole period for the next firing."""
    outcome = await run_poison_watch(svc)
    if outcome.new_findings:
        await _tenant_alert(svc, sleep)
    return outcome


async def _tenant_alert(svc: Services, sleep: Sleep) -> Delivery | None:
    pairs = open_unalerted(svc, TENANT_CODES)
    if not pairs:
        return None
    return await send_immediate(
        svc,
        channel=TENANT,
        kind="tenant",
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
        tenant = Tenant(skus, {}, {}, None)
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
    synced = last_directory_sync(svc, believed_for=STALE_SYNC)
    stale = None
    if synced is not None and now - synced > STALE_SYNC:
        stale = service_finding(
            DIRECTORY_SYNC_STALE,
            "directory-sync",
            message=(
                f"The last directory sync completed at {synced:%Y-%m-%d %H:%M} UTC, more than "
                "three 30-minute cycles ago: on-premises changes (joins, leavers, attributes) "
                "are not reaching Entra, so licenses are not following them."
            ),
            remedy=(
                "Check Entra Connect on the sync server (Synchronization Service Manager, "
                "Get-ADSyncScheduler) and Entra admin center > Entra Connect > Connect Sync "
                f"health; then {_sync_to_start(now - synced)}."
            ),
        )
    subject = "service:directory-sync"
    _set_one(svc, subject, f"{subject}|-|{DIRECTORY_SYNC_STALE}|-", stale, now)
    overdue = reconcile_overdue(ServiceState(svc.tables.servicestate), now.date())
    subject = "service:reconcile"
    _set_one(svc, subject, f"{subject}|-|{RECONCILE_OVERDUE}|-", overdue, now)
    resolve_removed_channels(svc)


def _sync_to_start(since: timedelta) -> str:
    """Entra Connect needs a delta sync within 7 days of the last one, else a full sync."""
    if since > DELTA_SYNC_WITHIN:
        return (
            "start a full sync (Start-ADSyncSyncCycle -PolicyType Initial): with no sync for "
            "more than 7 days a delta sync is not enough"
        )
    return "start a delta sync (Start-ADSyncSyncCycle -PolicyType Delta)"


def reconcile_overdue(state: ServiceState, today: date) -> Finding | None:
    """The nightly run of a date finishes that night or, cut short, the next: a run still
    unfinished after both (it fails at every firing, or needs more firings than the schedule
    gives), or no run since (the timer does not fire), is overdue. A run that fails writes no
    summary and no report, so without this the admin never learns the safety net stopped."""
    cutoff = (today - timedelta(days=2)).isoformat()
    run = load_run(state)
    last = state.get(LAST)
    if run is not None and run.phase != DONE:
        if run.date > cutoff:
            return None
        what = (
            f"The nightly reconciliation of {run.date} (run {run.run_id}, started "
            f"{run.started_at:%Y-%m-%d %H:%M} UTC) has not finished: it is still in its "
            f"{run.phase} phase, {run.counters.pages} page(s) of users done."
        )
    elif last is not None and _day(last.fields.get("finishedAt")) <= cutoff:
        what = (
            f"No nightly reconciliation has run since the one of {last.fields.get('date')}: "
            "the reconcile_nightly timer has not started one since."
        )
    else:
        return None
    return service_finding(
        RECONCILE_OVERDUE,
        "reconcile",
        message=(
            f"{what} Until one finishes, changes whose notifications were lost are not made "
            "good, and no nightly summary or report is written."
        ),
        remedy=(
            "Look up the reconcile_nightly function's failures in Application Insights "
            "(exceptions and reconcile.* events), or run 'license-guard reconcile' from an "
            "operator machine to see the error. A run that only stops at its 25-minute budget "
            "needs more firings a night: widen RECONCILE_SCHEDULE (e.g. 0 0 1-5 * * *)."
        ),
    )


def _day(at: object) -> str:
    """The UTC date of a stored time; a row without one is never overdue."""
    return at.date().isoformat() if isinstance(at, datetime) else "9999-12-31"


def _set_one(svc: Services, subject: str, key: str, finding: Finding | None, now: datetime) -> None:
    FindingsLedger(svc.tables.findings).set_one(
        subject, key, finding, now=now, run_id="tenant-check"
    )
