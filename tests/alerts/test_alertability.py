"""When a finding becomes alertable: processing groups, SKU swaps, exclusions, weekly info."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.core.findings import Finding
from shared.service.alerts.digest import DigestOutcome, run_digest
from shared.service.alerts.summaries import send_baseline_summary
from shared.service.stores import FindingsLedger, GroupMembers, LicensedGroups
from tests.alerts.mail import html, mails
from tests.alerts.world import (
    GRACE_SECONDS,
    alert_world,
    baseline,
    clear,
    error,
    record,
    world_with_findings,
)
from tests.demo_tenant import DIEGO, E3_BASE, E3_TEAMS, EMS, ENTERPRISEPACK, IRVIN, JONI
from tests.service.world import World

pytestmark = pytest.mark.anyio
DAY = 24 * 3600


def processing(world: World, group_id: str, state: str) -> None:
    """The cached group's licenseProcessingState (what sweeps and re-checks store)."""
    licensed = LicensedGroups(world.svc.tables.deltalinks)
    licensed.save_config(replace(licensed.configs()[group_id], processing_state=state))


def pending(user_id: str, group_id: str = E3_BASE) -> Finding:
    return error(
        user_id, "PendingGroupAssignment", sku=ENTERPRISEPACK, group=group_id, severity="warning"
    )


async def pending_while_processing(after: float) -> World:
    """Diego's pending assignment recorded while E3 Base is queued for processing (after the
    baseline), then `after` seconds passed."""
    world = alert_world()
    await baseline(world)
    processing(world, E3_BASE, "QueuedForProcessing")
    record(world, pending(DIEGO))
    world.clock.advance(after)
    return world


async def test_a_pending_assignment_in_a_group_still_processing_is_not_alerted() -> None:
    world = await pending_while_processing(6 * 3600)

    outcome = await run_digest(world.svc)

    assert outcome.status == "nothing-new"
    assert mails(world) == []


async def test_a_pending_assignment_is_alerted_after_the_24_hour_fallback() -> None:
    world = await pending_while_processing(DAY)

    outcome = await run_digest(world.svc)

    assert outcome.new == 1
    assert "PendingGroupAssignment" in html(mails(world)[0])


async def test_a_pending_assignment_is_alerted_once_the_group_completed_and_it_persists() -> None:
    world = await pending_while_processing(GRACE_SECONDS)
    assert (await run_digest(world.svc)).status == "nothing-new"
    processing(world, E3_BASE, "ProcessingComplete")

    outcome = await run_digest(world.svc)

    assert outcome.new == 1


def swap(world: World, user_id: str) -> None:
    """The user is in both the old (E3 Base) and the new (E3 Teams) group, and the new group's
    license conflicts with the old one's."""
    members = GroupMembers(world.svc.tables.groupmembers)
    members.apply(E3_BASE, [user_id], [])
    members.apply(E3_TEAMS, [user_id], [])
    record(world, error(user_id, "MutuallyExclusiveViolation", sku=EMS, group=E3_TEAMS))


async def test_a_sku_swap_in_progress_is_not_alerted_until_the_swap_grace_passes() -> None:
    world = alert_world()
    await baseline(world)
    swap(world, JONI)
    world.clock.advance(2 * DAY)

    during = await run_digest(world.svc)
    world.clock.advance(DAY)
    after = await run_digest(world.svc)

    assert during.status == "nothing-new"
    assert after.new == 1
    assert "MutuallyExclusiveViolation" in html(mails(world)[0])


async def test_a_conflict_without_a_swap_is_alerted_after_the_normal_grace() -> None:
    world = await world_with_findings(
        error(JONI, "MutuallyExclusiveViolation", sku=EMS, group=E3_TEAMS)
    )

    assert (await run_digest(world.svc)).new == 1


async def test_the_swap_grace_is_a_setting() -> None:
    world = alert_world(SWAP_GRACE_DAYS="1")
    await baseline(world)
    swap(world, JONI)
    world.clock.advance(DAY)

    assert (await run_digest(world.svc)).new == 1


async def digest_of_three_errors(world: World) -> tuple[DigestOutcome, str]:
    """After the baseline: errors for Irvin (EMS), Diego and Joni (E3) past the grace, then the
    digest: its outcome and its HTML."""
    await baseline(world)
    record(
        world,
        error(IRVIN),
        error(DIEGO, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE),
        error(JONI, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE),
    )
    world.clock.advance(GRACE_SECONDS)
    outcome = await run_digest(world.svc)
    return outcome, html(mails(world)[0])


async def test_exclusions_mute_alerts_but_the_findings_stay_in_the_ledger() -> None:
    world = alert_world(ALERT_EXCLUDE_SKUS=EMS, ALERT_EXCLUDE_USERS="diego.siciliani@contoso.com")
    outcome, body = await digest_of_three_errors(world)
    ledger = FindingsLedger(world.svc.tables.findings)

    assert outcome.new == 1
    assert "Joni Sherman" in body
    assert "Irvin Sayers" not in body
    assert "Diego Siciliani" not in body
    assert "2 open findings are muted by exclusions" in body
    assert {e.partition_key for e in ledger.open_by_code(["CountViolation"])} == {IRVIN}
    assert {e.partition_key for e in ledger.open_by_code(["UniquenessViolation"])} == {
        DIEGO,
        JONI,
    }


async def test_users_excluded_as_a_list_pasted_from_outlook_or_excel_are_all_muted() -> None:
    """Outlook joins addresses with '; ', Excel a column with newlines: each is a separator."""
    world = alert_world(
        ALERT_EXCLUDE_USERS="Diego.Siciliani@contoso.com; joni.sherman@contoso.com\n"
    )
    outcome, body = await digest_of_three_errors(world)

    assert outcome.new == 1
    assert "Irvin Sayers" in body
    assert "Diego Siciliani" not in body
    assert "Joni Sherman" not in body
    assert "2 open findings are muted by exclusions" in body


async def test_info_findings_go_to_a_separate_weekly_summary_not_the_digest() -> None:
    world = alert_world()
    await baseline(world)
    record(
        world,
        error(DIEGO, "MissingUsageLocation", sku=None, group=None, severity="info"),
        error(IRVIN),
    )
    world.clock.advance(GRACE_SECONDS)

    first = await run_digest(world.svc)
    world.clock.advance(3600)
    record(world, error(JONI))
    world.clock.advance(GRACE_SECONDS)
    await run_digest(world.svc)
    subjects = [m["subject"] for m in mails(world)]

    assert first.weekly is not None
    assert first.weekly.accepted
    assert len(subjects) == 3  # one weekly, two digests
    [weekly] = [m for m in mails(world) if "weekly summary" in m["subject"]]
    assert "MissingUsageLocation" in html(weekly)
    assert all("MissingUsageLocation" not in html(m) for m in mails(world) if m is not weekly)


async def test_a_pending_assignment_alerted_by_the_fallback_does_not_claim_it_finished() -> None:
    """After the 24-hour fallback the group may still be processing: the mail's cause must be
    true then too, not say the group finished processing."""
    world = await pending_while_processing(DAY)

    await run_digest(world.svc)

    body = html(mails(world)[0])
    assert "a licensing group that finished processing" not in body
    assert "pending for 24 hours (the group may still be processing)" in body


async def test_an_excluded_users_error_that_resolves_is_not_mailed_as_resolved() -> None:
    """The baseline marks every open finding as known, muted ones too; when an excluded
    user's error then cleared, the digest mailed it under "Resolved since the last digest"."""
    world = alert_world(ALERT_EXCLUDE_USERS="joni.sherman@contoso.com", ALERT_EXCLUDE_SKUS=EMS)
    record(
        world,
        error(JONI, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE),
        error(IRVIN),
        error(DIEGO, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE),
    )
    await baseline(world)
    clear(world, JONI, IRVIN, DIEGO)

    outcome = await run_digest(world.svc)
    body = html(mails(world)[0])

    assert outcome.resolved == 1
    assert "Diego Siciliani" in body
    assert "Joni Sherman" not in body
    assert "Irvin Sayers" not in body


async def test_the_baseline_mail_leaves_out_and_counts_what_exclusions_mute() -> None:
    """The baseline mail (and its channel posts) counted and listed an excluded SKU's errors
    among the 'existing issues'; exclusions mute every alert."""
    world = alert_world(ALERT_EXCLUDE_SKUS=EMS)
    record(
        world,
        error(IRVIN),
        error(JONI),
        error(DIEGO, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE),
    )

    await send_baseline_summary(world.svc, run_id="night-1")
    [mail] = mails(world)

    assert "baseline, 1 existing issue" in mail["subject"]
    assert "CountViolation" not in html(mail)
    assert "2 open findings are muted by exclusions" in html(mail)
