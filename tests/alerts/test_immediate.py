"""Immediate alerts: data loss (one user, and a mass loss with the audit log's actor),
tenant-level issues; refusal of outside recipients; the nightly summary."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.core.nightly_summary import NightlySummary, SeatForecast
from shared.fakes.directory import FakeDirectory
from shared.ports.directory import DirectoryError, GroupConfig
from shared.ports.messages import RecomputeUsers
from shared.ports.queues import RECOMPUTE_USERS, poison_name
from shared.service.alerts.digest import run_digest
from shared.service.alerts.summaries import send_nightly_summary
from shared.service.dataloss import alert_data_loss_owed
from shared.service.poison_watch import watch_poison
from shared.service.stores import FindingsLedger, ServiceState
from shared.service.tenant_alerts import send_tenant_alerts
from shared.service.users import recompute_users
from tests.alerts.mail import html, mails
from tests.alerts.world import (
    GRACE_SECONDS,
    RECIPIENT,
    SENDER,
    alert_world,
    baseline,
    error,
    prime,
    world_with_findings,
)
from tests.builders import guid
from tests.demo_tenant import ENTERPRISEPACK, IRVIN
from tests.service.test_seats_promised_tenant_wide import CountedScans
from tests.service.world import World, build_world, demo_snapshot

pytestmark = pytest.mark.anyio
MAILBOX_GROUP = guid("group", "Mailbox_Sales")
ADMIN = "it.admin@contoso.com"


def e3_group(name: str, members: list[str]) -> dict[str, Any]:
    """A security group whose licensing Entra has processed, assigning Office 365 E3 with every
    plan to the user ids in `members`."""
    return {
        "id": guid("group", name),
        "displayName": name,
        "securityEnabled": True,
        "assignedLicenses": [{"skuId": ENTERPRISEPACK, "disabledPlans": []}],
        "licenseProcessingState": {"state": "ProcessingComplete"},
        "members": [{"@odata.type": "#microsoft.graph.user", "id": u} for u in members],
    }


def with_mailbox_group(users: int) -> dict[str, Any]:
    """The demo tenant plus 'Mailbox_Sales' (Office 365 E3, every plan) and its `users`
    members, each holding E3 from it and from nothing else."""
    snapshot = demo_snapshot()
    ids = [guid("user", f"sales{n:02d}") for n in range(users)]
    snapshot["groups"].append(e3_group("Mailbox_Sales", ids))
    for n, user_id in enumerate(ids):
        snapshot["users"].append(
            {
                "id": user_id,
                "userPrincipalName": f"sales{n:02d}@contoso.com",
                "displayName": f"Sales Person {n:02d}",
                "usageLocation": "US",
                "accountEnabled": True,
                "assignedLicenses": [{"skuId": ENTERPRISEPACK, "disabledPlans": []}],
                "licenseAssignmentStates": [
                    {
                        "skuId": ENTERPRISEPACK,
                        "assignedByGroup": MAILBOX_GROUP,
                        "disabledPlans": [],
                        "state": "Active",
                        "error": "None",
                    }
                ],
            }
        )
    for sku in snapshot["subscribedSkus"]:
        if sku["skuId"] == ENTERPRISEPACK:
            sku["prepaidUnits"]["enabled"] += users
            sku["consumedUnits"] += users
    return snapshot


def sales(world: World) -> list[str]:
    return [u for u, user in world.directory.users.items() if "sales" in user["userPrincipalName"]]


async def recompute(world: World, user_ids: list[str]) -> None:
    await recompute_users(
        world.svc, RecomputeUsers(user_ids=tuple(user_ids), reason="test", correlation_id="rc")
    )


async def leave_the_mailbox_group(world: World) -> str:
    """The one Sales user, recomputed while holding E3 from Mailbox_Sales and again after
    leaving the group (Entra has not processed the removal yet)."""
    [user] = sales(world)
    await recompute(world, [user])
    world.directory.remove_member(MAILBOX_GROUP, user)
    await recompute(world, [user])
    return user


async def test_removing_a_mailbox_group_from_12_users_sends_one_mass_loss_alert() -> None:
    world = alert_world(with_mailbox_group(12))
    users = sales(world)
    await recompute(world, users)  # what they hold is known
    assert mails(world) == []
    for user_id in users:
        world.directory.remove_member(MAILBOX_GROUP, user_id, actor=ADMIN)
    world.clock.advance(120)

    await recompute(world, users)  # Entra has not processed the removal yet
    world.clock.advance(60)
    await recompute(world, users[:3])  # a duplicate message: no second alert
    [mail] = mails(world)
    body = html(mail)

    assert "mass data-loss risk: 12 users" in mail["subject"]
    assert "Mailbox_Sales" in body
    assert ADMIN in body
    assert "Remove member from group" in body
    assert "and 0 more" not in body
    assert len(FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])) == 12


async def test_the_mass_loss_mails_audit_times_as_the_digest_shows_times() -> None:
    """The 'When (UTC)' column showed Graph's `activityDateTime` as Graph wrote it (seven
    fractional digits, 'T', 'Z'); it reads like every other time in the mails."""
    world = alert_world(with_mailbox_group(12))
    users = sales(world)
    await recompute(world, users)
    for user_id in users:
        world.directory.remove_member(MAILBOX_GROUP, user_id, actor=ADMIN)
    for entry in world.directory.audits:  # as Graph writes it
        entry["activityDateTime"] = "2026-11-24T09:00:59.1234567Z"
    world.clock.advance(120)

    await recompute(world, users)
    [mail] = mails(world)
    body = html(mail)

    assert "When (UTC)" in body
    assert 'vertical-align:top;">2026-11-24 09:00 UTC</td>' in body
    assert "2026-11-24T09:00:59" not in body


async def test_one_user_losing_a_mailbox_is_alerted_at_once_with_the_deadline() -> None:
    world = alert_world(with_mailbox_group(2))
    users = sales(world)
    await recompute(world, users)
    world.directory.remove_member(MAILBOX_GROUP, users[0], actor=ADMIN)
    # Entra already processed the removal: only the stored record remembers the mailbox.
    world.directory.set_user_state(users[0], licenseAssignmentStates=[], assignedLicenses=[])

    await recompute(world, users)
    [mail] = mails(world)
    body = html(mail)

    assert "data-loss risk for 1 user(s)" in mail["subject"]
    assert "Sales Person 00" in body
    assert "30 days" in body
    assert (  # seen after Entra applied it: the 30 days began earlier
        "restore it well before 2026-12-24 09:00 UTC: Entra had already applied the change "
        "when the loss was seen (2026-11-24 09:00 UTC)"
    ) in body
    assert "Mailbox_Sales" in body
    world.clock.advance(GRACE_SECONDS)
    await baseline_then_digest_is_quiet(world)


async def baseline_then_digest_is_quiet(world: World) -> None:
    """An alert sent at once is not repeated by the digest."""
    state = ServiceState(world.svc.tables.servicestate)
    state.put("alerts-baseline-done", {"doneAt": world.clock.now()})
    before = len(mails(world))
    await run_digest(world.svc)
    assert all("DataLossRisk" not in html(m) for m in mails(world)[before:])


async def test_restoring_the_license_resolves_the_data_loss_finding() -> None:
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    world.directory.add_member(MAILBOX_GROUP, user)

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"]) == []


async def test_a_loss_restored_through_a_path_that_then_fails_stays_a_data_loss() -> None:
    """Entra processed the removal (the state is gone); the admin adds the user back, and the
    assignment, pending for a while, fails (no free seat): the mailbox is still lost, and the
    finding must stay open, not resolve when the path was pending and stay resolved."""
    world = alert_world(with_mailbox_group(1))
    user = await leave_the_mailbox_group(world)
    world.directory.set_user_state(user, licenseAssignmentStates=[])
    await recompute(world, [user])
    world.directory.add_member(MAILBOX_GROUP, user)
    await recompute(world, [user])  # pending: Graph shows no state from the group yet
    failed = {"skuId": ENTERPRISEPACK, "assignedByGroup": MAILBOX_GROUP, "disabledPlans": []}
    world.directory.set_user_state(
        user, licenseAssignmentStates=[{**failed, "state": "Error", "error": "CountViolation"}]
    )

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])


async def test_losing_teams_only_is_not_a_data_loss() -> None:
    world = alert_world(with_mailbox_group(1))
    [user] = sales(world)
    await recompute(world, [user])
    teams = "57ff2da0-773e-42df-b2af-ffb7a2317929"
    world.directory.set_group_licenses(
        MAILBOX_GROUP, [{"skuId": ENTERPRISEPACK, "disabledPlans": [teams]}]
    )
    group = copy.deepcopy(world.directory.groups[MAILBOX_GROUP])
    from shared.service.stores import LicensedGroups

    LicensedGroups(world.svc.tables.deltalinks).save_config(GroupConfig.from_graph(group))

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"]) == []
    assert mails(world) == []


async def test_recipients_outside_the_verified_domains_are_refused() -> None:
    recipients = "it-licensing@contoso.com,someone@gmail.com"
    world = await world_with_findings(error(IRVIN), ALERT_RECIPIENTS=recipients)

    outcome = await run_digest(world.svc)
    [refused] = FindingsLedger(world.svc.tables.findings).open_by_code(["AlertRecipientsRefused"])

    assert outcome.status == "refused"
    assert world.directory.sent_mail == []
    assert "someone@gmail.com" in str(refused.fields["message"])


async def test_without_a_sender_alerts_are_off_and_the_pipeline_runs() -> None:
    world = build_world(with_mailbox_group(1))

    await leave_the_mailbox_group(world)

    assert (await run_digest(world.svc)).status == "disabled"
    assert world.directory.sent_mail == []
    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])


async def test_a_stale_directory_sync_and_a_lapsing_subscription_are_alerted_at_once_once() -> None:
    world = alert_world()
    synced = world.clock.now() - timedelta(minutes=95)
    ServiceState(world.svc.tables.servicestate).put(
        "last-sync", {"completedAt": synced.isoformat().replace("+00:00", "Z")}
    )

    first = await send_tenant_alerts(world.svc)
    second = await send_tenant_alerts(world.svc)
    [mail] = mails(world)
    body = html(mail)

    assert first is not None
    assert first.accepted
    assert second is None
    assert "DirectorySyncStale" in body
    assert "SubscriptionAtRisk" in body  # STANDARDPACK: 3 seats in warning, 1 in use
    assert "2 tenant-level issue(s)" in mail["subject"]


NIGHT = NightlySummary(
    run_id="night-2026-11-24",
    date="2026-11-24",
    tenant_name="Contoso",
    started_at="2026-11-24T01:00:00Z",
    finished_at="2026-11-24T01:20:00Z",
    users_scanned=23,
    findings_by_code={"CountViolation": 2, "MissingUsageLocation": 1},
    new_findings=1,
    resolved_findings=0,
    seat_forecast=[SeatForecast(ENTERPRISEPACK, "ENTERPRISEPACK", "Office 365 E3", 27, 25, 17)],
    reprocess_outcomes={"done": 2},
    self_check_agreement=0.96,
)


async def test_the_nightly_summary_is_mailed_once_per_date() -> None:
    world = alert_world()
    summary = NIGHT

    await send_nightly_summary(world.svc, summary)
    await send_nightly_summary(world.svc, summary)
    [mail] = mails(world)

    assert mail["subject"].startswith("License Guard · Contoso: nightly summary 2026-11-24")
    assert "Office 365 E3" in html(mail)
    assert "96.0%" in html(mail)


async def test_a_data_loss_after_a_throttled_alert_is_mailed_not_just_marked() -> None:
    """The first user's alert was throttled out (its draft waits); the retry that also carries
    a second user's loss must mail that user, not send the old draft and mark both."""
    world = alert_world(with_mailbox_group(2))
    first, second = sales(world)
    await recompute(world, [first, second])
    for _ in range(3):
        world.directory.fail_next_send_mail(429, retry_after=1)
    world.directory.remove_member(MAILBOX_GROUP, first, actor=ADMIN)
    await recompute(world, [first])
    assert mails(world) == []
    world.directory.remove_member(MAILBOX_GROUP, second, actor=ADMIN)
    world.clock.advance(60)

    await recompute(world, [second])
    body = " ".join(html(m) for m in mails(world))

    assert "Sales Person 00" in body
    assert "Sales Person 01" in body


async def test_a_user_excluded_by_upn_gets_no_data_loss_alert() -> None:
    """ALERT_EXCLUDE_USERS takes UPNs (any case) as well as ids, for every alert."""
    world = alert_world(with_mailbox_group(2), ALERT_EXCLUDE_USERS="Sales00@Contoso.com")
    first, second = sales(world)
    await recompute(world, [first, second])
    world.directory.remove_member(MAILBOX_GROUP, first, actor=ADMIN)

    await recompute(world, [first])
    owed = await alert_data_loss_owed(world.svc)

    assert mails(world) == []
    assert owed.delivery is None
    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])


NEW_GROUP = guid("group", "Mailbox_Sales_New")


def with_a_second_mailbox_group() -> World:
    """One Sales user holding E3 from Mailbox_Sales, and an empty 'Mailbox_Sales_New' that
    assigns E3 too."""
    snapshot = with_mailbox_group(1)
    snapshot["groups"].append(e3_group("Mailbox_Sales_New", []))
    return alert_world(snapshot)


NO_SEAT = {
    "skuId": ENTERPRISEPACK,
    "assignedByGroup": NEW_GROUP,
    "disabledPlans": [],
    "state": "Error",
    "error": "CountViolation",
}


async def test_a_move_to_a_group_whose_license_fails_is_a_data_loss() -> None:
    """A1 -> A3 with no A3 seat left: the new group's path is in error (CountViolation), so it
    grants nothing and the mailbox goes once the old group's removal is processed."""
    world = with_a_second_mailbox_group()
    [user] = sales(world)
    await recompute(world, [user])
    world.directory.add_member(NEW_GROUP, user, actor=ADMIN)
    world.directory.remove_member(MAILBOX_GROUP, user, actor=ADMIN)
    world.directory.set_user_state(user, licenseAssignmentStates=[NO_SEAT], assignedLicenses=[])

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"])
    assert any("data-loss risk for 1 user(s)" in m["subject"] for m in mails(world))


async def test_a_first_license_that_fails_for_want_of_a_seat_is_no_data_loss() -> None:
    """A user who never held a mailbox joins a group with no seat left: pending, then in
    error. Nothing was held, so nothing is lost."""
    world = with_a_second_mailbox_group()
    [user] = sales(world)
    world.directory.remove_member(MAILBOX_GROUP, user)
    world.directory.set_user_state(user, licenseAssignmentStates=[], assignedLicenses=[])
    world.directory.add_member(NEW_GROUP, user, actor=ADMIN)
    await recompute(world, [user])  # pending: Graph shows nothing from the group yet
    world.directory.set_user_state(user, licenseAssignmentStates=[NO_SEAT])

    await recompute(world, [user])

    assert FindingsLedger(world.svc.tables.findings).open_by_code(["DataLossRisk"]) == []
    assert mails(world) == []


class GroupIdsAsGraph(FakeDirectory):
    """GET /groups/{id} as Graph answers it: a malformed id is 400 'Invalid object identifier'
    (what `Get-MgGroup -GroupId <name>` shows), not a 404 to skip."""

    async def group_configs(self, group_ids: Sequence[str]) -> dict[str, GroupConfig]:
        for group_id in group_ids:
            try:
                uuid.UUID(group_id)
            except ValueError:
                raise DirectoryError(
                    400, "Request_BadRequest", f"Invalid object identifier '{group_id}'."
                ) from None
        return await super().group_configs(group_ids)


async def test_a_poisoned_message_is_alerted_without_looking_its_digest_up_as_a_group() -> None:
    """A PoisonedMessage finding keeps the message's digest where a group id would be: the
    alert must not ask Graph for a group by it (400), which failed the tenant alert and then
    every digest."""
    world = build_world(fake=GroupIdsAsGraph, ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    await baseline(world)
    world.svc.queues.by_name(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")
    watch_poison(world.svc)

    tenant = await send_tenant_alerts(world.svc)
    [mail] = mails(world)
    body = html(mail)

    assert tenant is not None
    assert tenant.status == "sent"
    assert "PoisonedMessage" in body
    assert RECOMPUTE_USERS in body


async def test_a_poisoned_message_line_names_its_queue_not_its_digest_as_the_group() -> None:
    """A PoisonedMessage keeps its message's digest where a group id would be: the mail's
    Group column (and the line's link) must say the queue, not show the digest as a group."""
    world = build_world(ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    await baseline(world)
    world.svc.queues.by_name(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")
    watch_poison(world.svc)
    [digest] = [
        str(e.fields["groupId"])
        for e in world.svc.tables.findings.query_all()
        if e.fields.get("code") == "PoisonedMessage"
    ]

    await send_tenant_alerts(world.svc)
    [mail] = mails(world)
    body = html(mail)

    assert digest not in body
    assert f"queue {RECOMPUTE_USERS}" in body


async def test_a_data_loss_alert_says_how_to_restore_each_user_not_the_first_users_way() -> None:
    """Two users lose their mailbox at once, each through another group: the mail's one
    DataLossRisk line gave the first user's fix ('add the user back to Mailbox_Legal') for
    both, so the other was to be added to a group that never licensed him."""
    snapshot = with_mailbox_group(2)
    legal = e3_group("Mailbox_Legal", [])
    [sales_group] = [g for g in snapshot["groups"] if g["id"] == MAILBOX_GROUP]
    moved = sales_group["members"].pop(0)
    legal["members"].append(moved)
    snapshot["groups"].append(legal)
    [user] = [u for u in snapshot["users"] if u["id"] == moved["id"]]
    user["licenseAssignmentStates"][0]["assignedByGroup"] = legal["id"]
    world = alert_world(snapshot)
    users = sales(world)
    await recompute(world, users)
    world.directory.remove_member(legal["id"], moved["id"], actor=ADMIN)
    world.directory.remove_member(MAILBOX_GROUP, users[1], actor=ADMIN)

    await recompute(world, users)
    [mail] = mails(world)
    body = html(mail)

    assert "data-loss risk for 2 user(s)" in mail["subject"]
    assert "Group:</span> direct assignment" not in body  # the mailboxes came from groups
    lines = body.split("border-left:4px")[1:]
    [legal_line] = [b for b in lines if "add the user back to &#39;Mailbox_Legal&#39;" in b]
    [sales_line] = [b for b in lines if "add the user back to &#39;Mailbox_Sales&#39;" in b]
    assert "Sales Person 00" in legal_line
    assert "Sales Person 01" not in legal_line
    assert "Sales Person 01" in sales_line
    assert "Sales Person 00" not in sales_line


async def test_the_nightly_summary_shows_its_run_times_as_the_digest_does() -> None:
    """The run's times came as stored (ISO 8601 with microseconds and '+00:00'); the digest
    shows 'YYYY-MM-DD HH:MM UTC'."""
    world = alert_world()
    summary = replace(
        NIGHT,
        started_at="2026-11-24T01:00:03.512345+00:00",
        finished_at="2026-11-24T01:20:41.004211+00:00",
    )

    await send_nightly_summary(world.svc, summary)
    [mail] = mails(world)

    assert "from 2026-11-24 01:00 UTC to 2026-11-24 01:20 UTC" in html(mail)


async def twelve_losses_one_message_each(**settings: str) -> tuple[int, int, list[str]]:
    """The findings ledger's full scans, the Graph user reads and the mail subjects while 12
    users lose their mailbox, each seen by its own recompute message."""
    world = alert_world(with_mailbox_group(12), **settings)
    users = sales(world)
    await recompute(world, users)
    table = CountedScans(world.svc.tables.findings)
    world.svc.tables = replace(world.svc.tables, findings=table)
    for user_id in users:
        world.directory.remove_member(MAILBOX_GROUP, user_id, actor=ADMIN)
    reads_before = world.directory.requests["users_by_id"]

    for user_id in users:
        await recompute(world, [user_id])

    reads = world.directory.requests["users_by_id"] - reads_before
    return table.scans, reads, [mail["subject"] for mail in mails(world)]


async def test_a_new_data_loss_reads_only_the_recent_losses_not_the_whole_ledger() -> None:
    """Each recompute message with a new loss scanned the whole findings ledger (every
    finding of the tenant) for the losses of the last hour, and, with a UPN exclusion, read
    the UPN of every user lost in the last hour from Graph again."""
    scans, reads, subjects = await twelve_losses_one_message_each()
    scans_excluding, reads_excluding, _ = await twelve_losses_one_message_each(
        ALERT_EXCLUDE_USERS="nobody@contoso.com"
    )

    assert any("mass data-loss risk" in subject for subject in subjects), subjects
    assert scans == scans_excluding == 0
    assert reads_excluding == reads


async def test_the_tenant_alert_does_not_read_the_whole_findings_table() -> None:
    """Every 30 minutes (and after each poison watch) the tenant-level alert looked for its
    nine codes by reading every finding of every user; now the table service sends those
    codes' rows only."""
    world = build_world(ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    prime(world)
    await baseline(world)
    world.svc.queues.by_name(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")
    watch_poison(world.svc)
    table = CountedScans(world.svc.tables.findings)
    world.svc.tables = replace(world.svc.tables, findings=table)

    tenant = await send_tenant_alerts(world.svc)

    assert tenant is not None
    assert tenant.status == "sent"
    assert "PoisonedMessage" in html(mails(world)[-1])
    assert table.scans == 0
