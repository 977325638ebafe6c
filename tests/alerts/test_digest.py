"""The digest: transitions since the last one, grouped, escaped, once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.core.findings import finding_fields
from shared.fakes.tables import InMemoryTable
from shared.ports.tables import Entity, safe_key
from shared.service.alerts.digest import DigestOutcome, run_digest
from shared.service.users import recompute_users
from tests.alerts.mail import header, html, mails
from tests.alerts.world import (
    GRACE_SECONDS,
    RECIPIENT,
    SENDER,
    alert_world,
    baseline,
    clear,
    error,
    record,
    world_with_findings,
)
from tests.builders import guid
from tests.demo_tenant import ADELE, DIEGO, E3_BASE, ENTERPRISEPACK, IRVIN, JONI, NESTOR
from tests.service.test_recompute import ISAIAH, SHAREPOINT_PLAN_1, learned, recompute
from tests.service.world import World
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio


async def test_the_first_run_mails_one_baseline_summary_then_digests_report_only_changes() -> None:
    world = alert_world()
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    waiting = await run_digest(world.svc)
    from shared.service.alerts.summaries import send_baseline_summary

    await send_baseline_summary(world.svc, run_id="night-1")
    [summary] = mails(world)
    world.clock.advance(GRACE_SECONDS)
    nothing = await run_digest(world.svc)
    record(world, error(NESTOR, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE))
    world.clock.advance(GRACE_SECONDS)
    digest = await run_digest(world.svc)

    assert waiting.status == "waiting-for-baseline"
    assert "baseline, 2 existing issues" in summary["subject"]
    assert "CountViolation" in html(summary)
    assert nothing.status == "nothing-new"
    assert digest.status == "sent"
    assert digest.new == 1
    assert len(mails(world)) == 2
    assert "UniquenessViolation" in html(mails(world)[1])
    assert "CountViolation" not in html(mails(world)[1])


async def test_a_new_error_is_mailed_once_as_one_grouped_row_with_the_users_named() -> None:
    world = await world_with_findings(error(IRVIN), error(JONI))

    outcome = await run_digest(world.svc)
    [mail] = mails(world)
    body = html(mail)

    assert outcome.new == 2
    assert body.count("CountViolation · 2 findings") == 1
    assert "Licensing_Office365_EMS_E3" in body
    assert "Enterprise Mobility + Security E3 (EMS)" in body
    assert "Irvin Sayers" in body
    assert "joni.sherman@contoso.com" in body
    assert "No free seats were left" in body
    assert "https://admin.microsoft.com" in body
    assert "https://entra.microsoft.com" in body
    assert "would reprocess when the cause clears" in body  # observe mode
    assert mail["toRecipients"] == [{"emailAddress": {"address": RECIPIENT}}]
    assert world.directory.sent_mail[0]["sender"] == SENDER
    assert world.directory.sent_mail[0]["saveToSentItems"] is True  # a sent draft is kept
    assert header(mail) == outcome.mail_id
    assert not mail.get("attachments")


async def abandoned_digest(world: World) -> DigestOutcome:
    """A digest claimed and never sent (Graph refused it), its finding cleared before a retry,
    so the next run closed it as no longer news; then a new error, alertable."""
    world.clock.advance(3600)
    record(world, error(JONI))
    world.clock.advance(GRACE_SECONDS)
    world.directory.fail_next_send_mail(403)
    failed = await run_digest(world.svc, sleep=Sleeps())
    world.clock.advance(3600)
    clear(world, JONI)
    quiet = await run_digest(world.svc, sleep=Sleeps())
    world.clock.advance(3600)
    record(world, error(NESTOR, "UniquenessViolation", sku=ENTERPRISEPACK, group=E3_BASE))
    world.clock.advance(GRACE_SECONDS)
    assert (failed.status, quiet.status) == ("failed", "nothing-new")
    return await run_digest(world.svc, sleep=Sleeps())


async def test_a_digest_after_an_abandoned_one_says_since_the_last_digest_sent() -> None:
    """The abandoned digest was never sent: 'since' is when the last digest went out."""
    world = await world_with_findings(error(IRVIN))
    sent_at = world.clock.now()
    assert (await run_digest(world.svc)).status == "sent"

    later = await abandoned_digest(world)
    body = html(mails(world)[-1])

    assert later.status == "sent"
    assert [header(m) for m in mails(world)][-1] == later.mail_id
    assert f"Changes since the last digest ({sent_at:%Y-%m-%d %H:%M} UTC)" in body


async def test_a_first_digest_after_an_abandoned_one_says_since_the_baseline() -> None:
    """No digest was ever sent: the first one sent covers the changes since the baseline."""
    world = alert_world()
    await baseline(world)

    later = await abandoned_digest(world)
    body = html(mails(world)[-1])

    assert later.status == "sent"
    assert "Changes since the baseline summary" in body
    assert "since the last digest" not in body


async def test_an_error_within_its_grace_is_not_mailed_yet() -> None:
    world = await world_with_findings(error(IRVIN), after=GRACE_SECONDS - 60)

    outcome = await run_digest(world.svc)

    assert outcome.status == "nothing-new"
    assert mails(world) == []


async def test_a_persisting_error_is_not_mailed_again() -> None:
    world = await world_with_findings(error(IRVIN))
    await run_digest(world.svc)
    world.clock.advance(3600)
    record(world, error(IRVIN))  # found again by a later recompute

    second = await run_digest(world.svc)

    assert second.status == "nothing-new"
    assert second.still_open == 1
    assert len(mails(world)) == 1


class DigestBetweenReadAndWrite(InMemoryTable):
    """The findings table; `between` runs once right after a subject's rows were read, as
    the digest, on another instance, may mark them while a recompute re-records them."""

    between: Callable[[], object] | None = None

    def query(self, pk: str) -> list[Entity]:
        rows = super().query(pk)
        between, self.between = self.between, None
        if between is not None:
            between()
        return rows


def test_an_error_the_digest_mailed_while_a_recompute_recorded_it_is_not_mailed_again() -> None:
    """A recompute read the user's open finding, the digest mailed it and marked it
    `alertedIn`, and the recompute wrote the finding back from what it had read: the mark was
    gone, and the next digest mailed the same error again as new."""
    world = alert_world()
    findings = DigestBetweenReadAndWrite("findings")
    world.svc.tables = replace(world.svc.tables, findings=findings)
    asyncio.run(baseline(world))
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)

    findings.between = lambda: asyncio.run(run_digest(world.svc))
    record(world, error(IRVIN))  # found again by a recompute, the digest in between
    world.clock.advance(3600)
    second = asyncio.run(run_digest(world.svc))

    assert findings.between is None  # the digest did run in between
    assert second.status == "nothing-new"
    assert len(mails(world)) == 1


async def test_a_resolved_error_is_reported_in_the_next_digest_once() -> None:
    world = await world_with_findings(error(IRVIN))
    await run_digest(world.svc)
    clear(world, IRVIN)

    resolved = await run_digest(world.svc)
    again = await run_digest(world.svc)

    assert resolved.status == "sent"
    assert resolved.resolved == 1
    assert resolved.new == 0
    body = html(mails(world)[1])
    assert "Resolved since the last digest" in body
    assert "Irvin Sayers" in body
    assert again.status == "nothing-new"
    assert len(mails(world)) == 2


async def test_an_error_that_clears_before_it_was_mailed_is_not_news() -> None:
    world = await world_with_findings(error(IRVIN), after=60)
    clear(world, IRVIN)
    world.clock.advance(GRACE_SECONDS)

    assert (await run_digest(world.svc)).status == "nothing-new"
    assert mails(world) == []


async def test_no_mail_when_nothing_changed() -> None:
    world = alert_world()
    await baseline(world)

    assert (await run_digest(world.svc)).status == "nothing-new"
    assert (await run_digest(world.svc)).status == "nothing-new"
    assert mails(world) == []


async def test_the_subject_states_the_counts_and_the_tenant() -> None:
    world = await world_with_findings(
        error(IRVIN), error(NESTOR, "UniquenessViolation", group=E3_BASE)
    )
    await run_digest(world.svc)
    clear(world, NESTOR)
    record(world, error(JONI))
    world.clock.advance(GRACE_SECONDS)

    await run_digest(world.svc)
    first, second = (m["subject"] for m in mails(world))

    assert first == "License Guard · Contoso: 2 new issues, 0 resolved, 2 open"
    assert second == "License Guard · Contoso: 1 new issue, 1 resolved, 2 open"


async def test_a_display_name_with_html_is_escaped_in_the_html_part() -> None:
    world = alert_world()
    world.directory.set_user_state(ADELE, displayName='<img src=x onerror="alert(1)">Adele')
    await baseline(world)
    record(world, error(ADELE, message="<script>alert('x')</script> has no seat"))
    world.clock.advance(GRACE_SECONDS)

    await run_digest(world.svc)
    body = html(mails(world)[0])

    assert "<img src=x" not in body
    assert "<script>" not in body
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Adele" in body
    assert "&lt;script&gt;" in body


async def test_at_most_twenty_users_are_named_per_row_then_and_n_more() -> None:
    world = alert_world()
    users = sorted(world.directory.users)
    await baseline(world)
    record(world, *(error(u) for u in users))
    world.clock.advance(GRACE_SECONDS)

    await run_digest(world.svc)
    body = html(mails(world)[0])
    named = sum(1 for u in world.directory.users.values() if u["userPrincipalName"] in body)

    assert len(users) > 20
    assert named == 20
    assert f"and {len(users) - 20} more" in body


async def test_the_plain_text_part_carries_the_same_rows() -> None:
    from shared.core.alerting import LedgerRow
    from shared.render import alert_mails
    from shared.render import mail as compose

    row = LedgerRow(
        key=f"{DIEGO}|x|CountViolation|g",
        subject=DIEGO,
        code="CountViolation",
        severity="error",
        sku_id="x",
        group_id="g",
        message="<b>no seat</b>",
        remedy="Buy seats.",
        first_seen=__import__("datetime").datetime(2026, 1, 1),
    )
    names = compose.MailNames(
        "Contoso", {DIEGO: compose.UserName("Diego <Siciliani>", "diego@contoso.com")}
    )
    mail = alert_mails.digest_mail(
        mail_id="digest-1", names=names, new=[row], resolved=[], still_open=0, waiting={},
        muted=0, actions={}, mode_note="Mode: observe.", since=None,
    )  # fmt: skip

    assert "Diego <Siciliani> <diego@contoso.com>" in mail.text
    assert "Diego &lt;Siciliani&gt;" in mail.html
    assert "<b>no seat</b>" in mail.text
    assert "&lt;b&gt;no seat&lt;/b&gt;" in mail.html
    eml = compose.mime(mail, SENDER, [RECIPIENT], row.first_seen)
    assert b"multipart/alternative" in eml
    assert b"x-license-guard-digest: digest-1" in eml


async def test_a_lingering_exchange_conflict_is_mailed_with_the_reprocess_it_got() -> None:
    """Microsoft now allows Exchange Online Plan 1 and Plan 2 together: the mail's fix says to
    reprocess, and that License Guard did (act mode), not that Entra never resolves it."""
    world = alert_world(LICENSE_GUARD_MODE="act")
    await baseline(world)
    isaiah = world.directory.users[ISAIAH]
    [e1] = [s for s in isaiah["licenseAssignmentStates"] if s["assignedByGroup"] is None]
    e1["disabledPlans"] = [SHAREPOINT_PLAN_1]  # only the Exchange pair meets E3 now
    await learned(world)
    await recompute_users(world.svc, recompute(ISAIAH))
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)
    [mail] = [m for m in mails(world) if header(m) == outcome.mail_id]
    body = html(mail)

    assert "MutuallyExclusiveViolation" in body
    assert "Reprocess the user: Microsoft says to reprocess a conflict" in body
    assert "never resolves" not in body
    assert "queued a reprocess for 1 of 1" in body


async def test_resolved_users_are_named_when_new_errors_of_their_line_name_twenty() -> None:
    """Twenty new errors and three resolved ones of one group x product x issue: the resolved
    table showed the three users' object ids, the names were read for the new line's twenty
    only (one budget of twenty users per group x product x issue for both lines)."""
    world = alert_world()
    users = sorted(world.directory.users)
    resolved, new = users[:3], users[3:]
    await baseline(world)
    record(world, *(error(u) for u in resolved))
    world.clock.advance(GRACE_SECONDS)
    await run_digest(world.svc)
    clear(world, *resolved)
    record(world, *(error(u) for u in new))
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)
    body = html(mails(world)[1])

    assert (outcome.new, outcome.resolved) == (20, 3)
    for user_id in resolved:
        assert world.directory.users[user_id]["displayName"] in body
        assert user_id not in body.split("Resolved since the last digest")[1]


async def test_users_of_one_issue_with_different_fixes_are_named_on_the_line_of_their_fix() -> None:
    """Findings of one group x product x issue whose fixes differ are a line per fix; each line
    names its users (the names were read for the first twenty of the issue only)."""
    world = alert_world()
    users = sorted(world.directory.users)
    synced = users[20:]
    await baseline(world)
    record(
        world,
        *(
            error(u)._replace(remedy="Set it on-premises.") if u in synced else error(u)
            for u in users
        ),
    )
    world.clock.advance(GRACE_SECONDS)

    await run_digest(world.svc)
    body = html(mails(world)[0])
    [on_premises] = [b for b in body.split("border-left:4px")[1:] if "Set it on-premises." in b]

    for user_id in synced:
        assert world.directory.users[user_id]["displayName"] in on_premises
    assert "CountViolation · 20 findings" in body
    assert "CountViolation · 3 findings" in body


async def test_a_digest_of_hundreds_of_groups_stays_under_graphs_request_size() -> None:
    """A product out of seats across 300 licensing groups: every line names twenty users, and
    the mail's MIME grew past the ~4 MB a Graph request carries: refused (413) at every
    digest, so the admins heard nothing. Lines that do not fit are counted, not shown."""
    world = alert_world()
    await baseline(world)
    now = world.clock.now()
    for g in range(300):
        for u in range(20):
            found = error(guid("user", f"{g}-{u}"), group=guid("group", f"Licensing_{g:03d}"))
            # one row each, as the ledger writes them (its reconcile per user is slow here)
            world.svc.tables.findings.upsert(
                safe_key(found.subject),
                safe_key(found.key),
                finding_fields(found) | {"firstSeen": now, "lastSeen": now, "runId": "test"},
            )
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)

    assert outcome.status == "sent"
    assert outcome.new == 6000
    body = html(mails(world)[0])
    assert "more lines left out" in body


async def test_an_error_cleared_and_back_before_the_next_digest_is_not_mailed_again() -> None:
    """Mailed, then cleared and back before the next digest (a recompute between two reads of
    a state still settling): the admin was never told it resolved, and the next digest mailed
    the same error again as new."""
    world = await world_with_findings(error(IRVIN))
    await run_digest(world.svc)
    world.clock.advance(600)
    clear(world, IRVIN)
    world.clock.advance(600)
    record(world, error(IRVIN))
    world.clock.advance(3600)

    again = await run_digest(world.svc)

    assert again.status == "nothing-new"
    assert again.still_open == 1
    assert len(mails(world)) == 1


@pytest.mark.parametrize(
    ("mode", "claim"),
    [
        ("act", "reprocesses the waiting users"),
        ("observe", "would reprocess when the cause clears"),
    ],
)
async def test_an_error_on_a_direct_assignment_is_not_said_to_be_reprocessed(
    mode: str, claim: str
) -> None:
    """reprocessLicenseAssignment re-runs group-based assignments only, and the policy alerts
    instead for a direct one; the line's 'License Guard:' said it reprocesses (act) or would
    (observe)."""
    world = await world_with_findings(
        error(DIEGO, sku=ENTERPRISEPACK, group=None), LICENSE_GUARD_MODE=mode
    )

    await run_digest(world.svc)
    body = html(mails(world)[0])

    assert claim not in body
    assert "does not reprocess a direct assignment" in body


async def test_a_duplicate_proxy_address_is_not_promised_a_reprocess_after_its_fix() -> None:
    """The policy never reprocesses a UniquenessViolation (no evidence shows the proxy address
    fixed); the line said 'it reprocesses after the fix is seen', and the admin who fixed the
    address waited for a reprocess that never came."""
    world = await world_with_findings(error(JONI, "UniquenessViolation"), LICENSE_GUARD_MODE="act")

    await run_digest(world.svc)
    body = html(mails(world)[0])

    assert "deliberately does not reprocess" in body
    assert "reprocesses after the fix" not in body
    assert "then reprocess the user" in body


@pytest.mark.parametrize("mode", ["act", "observe"])
async def test_a_mass_failure_is_not_promised_a_reprocess_user_by_user(mode: str) -> None:
    """30 users of one group wait for EMS: the policy raises one group alert for them and
    reprocesses none of them (a group's Reprocess does it in one step), now or once seats are
    free. The line said License Guard 'reprocesses the waiting users automatically once seats
    are free' (act) or 'would reprocess when the cause clears' (observe)."""
    users = [guid("user", f"mass-{i}") for i in range(30)]
    world = await world_with_findings(*(error(u) for u in users), LICENSE_GUARD_MODE=mode)

    await run_digest(world.svc)
    body = html(mails(world)[0])

    assert "reprocesses the waiting users" not in body
    assert "would reprocess when the cause clears" not in body
    assert "30 users of the group fail alike" in body
    assert "reprocess the group&#39;s users in error in the Microsoft 365 admin center" in body


async def test_a_few_users_waiting_for_seats_are_still_promised_their_reprocess() -> None:
    world = await world_with_findings(error(IRVIN), error(JONI), LICENSE_GUARD_MODE="act")

    await run_digest(world.svc)

    assert "reprocesses the waiting users automatically" in html(mails(world)[0])
