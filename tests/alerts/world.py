"""Alert test world: the service world (demo tenant, FakeDirectory, in-memory stores, a clock)
with alerts switched on, caches primed, and helpers to put findings in the ledger; the mails
it sends are read with tests.alerts.mail."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from shared.adapters.snapshot import GraphTranslator
from shared.core.findings import ERROR, Finding
from shared.ports.directory import GroupConfig
from shared.service.alerts.summaries import send_baseline_summary
from shared.service.stores import FindingsLedger, LicensedGroups, ServiceState
from tests import builders
from tests.demo_tenant import EMS, EMS_E3
from tests.service.world import World, build_world

SENDER = "megan.bowen@contoso.com"
RECIPIENT = "it-licensing@contoso.com"
GRACE_SECONDS = 30 * 60


def alert_world(snapshot: dict[str, Any] | None = None, **settings: str) -> World:
    """Alerts on (sender and recipient in contoso.com), SKU and group caches filled."""
    env = {"ALERT_SENDER": SENDER, "ALERT_RECIPIENTS": RECIPIENT} | settings
    world = build_world(snapshot, **env)
    prime(world)
    return world


def prime(world: World) -> None:
    skus = GraphTranslator().skus(world.directory.skus)
    ServiceState(world.svc.tables.servicestate).save_skus(skus.values(), world.clock.now())
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    for group in world.directory.groups.values():
        if group.get("assignedLicenses"):
            licensed.save_config(GroupConfig.from_graph(group))


async def baseline(world: World) -> None:
    """The first reconciliation's baseline is done (its mail is dropped from `sent_mail`)."""
    await send_baseline_summary(world.svc, run_id="baseline-test")
    world.directory.sent_mail.clear()


async def world_with_findings(
    *findings: Finding, after: float = GRACE_SECONDS, **settings: str
) -> World:
    """Alerts on (with `settings`), the baseline done, `findings` recorded, then `after`
    seconds passed."""
    world = alert_world(None, **settings)
    await baseline(world)
    record(world, *findings)
    world.clock.advance(after)
    return world


def error(
    user_id: str,
    code: str = "CountViolation",
    *,
    sku: str | None = EMS,
    group: str | None = EMS_E3,
    severity: str = ERROR,
    message: str | None = None,
) -> Finding:
    """An error of `user_id`'s; unless told otherwise, EMS's CountViolation from the EMS group."""
    return builders.finding(code, user_id, sku=sku, group=group, severity=severity, message=message)


def record(world: World, *findings: Finding, run_id: str = "test") -> None:
    """Findings found now: each subject's findings reconciled (others of it resolve)."""
    by_subject: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_subject[finding.subject].append(finding)
    ledger = FindingsLedger(world.svc.tables.findings)
    for subject, found in by_subject.items():
        ledger.reconcile(subject, found, now=world.clock.now(), run_id=run_id)


def clear(world: World, *subjects: str) -> None:
    ledger = FindingsLedger(world.svc.tables.findings)
    for subject in subjects:
        ledger.reconcile(subject, [], now=world.clock.now(), run_id="test")
