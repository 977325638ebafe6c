"""The digest reaches the configured channels with the mail's id: the webhook lists the new
findings by key with admin-center links and validates against docs/alert-webhook.schema.json,
Teams gets the card, a failing Slack receiver changes nothing for the others or the mail, and
a digest already delivered is not posted again. Without ALERT_SENDER the channels still get
each alert, once per id."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from shared.core.findings import WARNING, Finding
from shared.ports.queues import RECOMPUTE_USERS, poison_name
from shared.render.channel_payloads import DIGEST_HEADER, SIGNATURE_HEADER, verify
from shared.service.alerts.digest import run_digest
from shared.service.poison_watch import watch_poison
from shared.service.stores import FindingsLedger, ServiceState
from shared.service.tenant_alerts import send_tenant_alerts
from tests.alerts.mail import header, html, mails
from tests.alerts.receiver import Receiver
from tests.alerts.test_immediate import MAILBOX_GROUP, recompute, sales, with_mailbox_group
from tests.alerts.world import GRACE_SECONDS, alert_world, baseline, error, prime, record
from tests.demo_tenant import ADELE, ALEX, DIEGO, IRVIN, JONI, NESTOR
from tests.service.world import World, build_world

SCHEMA = json.loads(Path("docs/alert-webhook.schema.json").read_text())
SECRET = "shared-secret-for-the-test-receiver"

pytestmark = pytest.mark.anyio


async def channel_world(
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    urls: dict[str, str],
    channels: list[dict[str, str]],
) -> World:
    """Alerts on with `channels`; each secret in `urls` names a path on the receiver. The
    baseline is done."""
    for secret_name, path in urls.items():
        monkeypatch.setenv(secret_name, receiver.url + path)
    world = alert_world(ALERT_CHANNELS=json.dumps(channels))
    await baseline(world)
    return world


async def test_the_digest_goes_to_every_channel_once(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)
    channels = [
        {"type": "teams", "urlSecretName": "ALERT_TEAMS_URL", "minSeverity": "warning"},
        {"type": "slack", "urlSecretName": "ALERT_SLACK_URL"},
        {
            "type": "webhook",
            "urlSecretName": "ALERT_WEBHOOK_URL",
            "signingSecretName": "ALERT_WEBHOOK_SECRET",
            "minSeverity": "info",
        },
    ]
    urls = {
        "ALERT_TEAMS_URL": "/teams",
        "ALERT_SLACK_URL": "/fail-slack",
        "ALERT_WEBHOOK_URL": "/hook",
    }
    world = await channel_world(receiver, monkeypatch, urls, channels)
    receiver.posts.clear()
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)
    again = await run_digest(world.svc)

    [mail] = mails(world)
    assert outcome.status == "sent"
    assert again.status == "nothing-new"
    [(_, headers, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert headers[DIGEST_HEADER] == header(mail) == document["digestId"]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert {f["user"]["id"] for f in document["findings"]} == {IRVIN, JONI}
    assert all(f["status"] == "new" for f in document["findings"])
    assert document["counts"]["new"] == 2
    [(_, teams_headers, teams_body)] = receiver.to("/teams")
    card = json.loads(teams_body)["attachments"][0]["content"]
    assert teams_headers[DIGEST_HEADER] == header(mail)
    assert "CountViolation" in json.dumps(card)
    assert len(receiver.to("/fail-slack")) == 3


async def test_the_webhook_counts_every_open_finding_not_only_the_new_ones_it_lists(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [
        {"type": "webhook", "urlSecretName": "ALERT_ALL_URL", "minSeverity": "info"},
        {"type": "webhook", "urlSecretName": "ALERT_ERRORS_URL", "minSeverity": "error"},
    ]
    urls = {"ALERT_ALL_URL": "/all", "ALERT_ERRORS_URL": "/errors"}
    world = await channel_world(receiver, monkeypatch, urls, channels)
    # five open findings (two of them warnings) reported by an earlier digest ...
    record(
        world,
        error(ADELE),
        error(DIEGO),
        error(DIEGO, "UniquenessViolation", sku=None, group=None),
        error(ALEX, severity=WARNING),
        error(NESTOR, severity=WARNING),
    )
    world.clock.advance(GRACE_SECONDS)
    assert (await run_digest(world.svc)).status == "sent"
    world.directory.sent_mail.clear()
    receiver.posts.clear()
    # ... and two new errors since: seven open, two listed
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)

    [mail] = mails(world)
    assert outcome.still_open == 7
    assert mail["subject"].endswith("2 new issues, 0 resolved, 7 open")
    [(_, _, body)] = receiver.to("/all")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert {f["user"]["id"] for f in document["findings"]} == {IRVIN, JONI}
    assert document["counts"] == {"new": 2, "resolved": 0, "open": 7}
    [(_, _, errors_body)] = receiver.to("/errors")
    assert json.loads(errors_body)["counts"] == {"new": 2, "resolved": 0, "open": 5}


async def test_the_weekly_summary_lists_its_findings_on_the_webhook_but_does_not_count_them(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weekly mail gave the webhook none of its standing findings (a document of no
    findings); listed, they are still not counted as open: the digest does not count them."""
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_WEBHOOK_URL": "/hook"}, channels)
    receiver.posts.clear()
    record(
        world,
        error(DIEGO, "MissingUsageLocation", sku=None, group=None, severity="info"),
        error(IRVIN),
    )
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)

    assert outcome.weekly is not None
    assert outcome.weekly.accepted
    documents = {json.loads(b)["kind"]: json.loads(b) for _, _, b in receiver.to("/hook")}
    weekly = documents["weekly"]
    jsonschema.validate(weekly, SCHEMA)
    assert [(f["code"], f["status"], f["user"]["id"]) for f in weekly["findings"]] == [
        ("MissingUsageLocation", "open", DIEGO)
    ]
    assert weekly["counts"]["open"] == documents["digest"]["counts"]["open"] == 1


async def test_an_immediate_alert_counts_the_open_findings_as_the_digest_does(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_WEBHOOK_URL": "/hook"}, channels)
    record(world, error(ADELE), error(DIEGO), error(ALEX, severity=WARNING))
    world.clock.advance(GRACE_SECONDS)
    assert (await run_digest(world.svc)).status == "sent"
    receiver.posts.clear()
    synced = world.clock.now() - timedelta(minutes=95)
    ServiceState(world.svc.tables.servicestate).put(
        "last-sync", {"completedAt": synced.isoformat().replace("+00:00", "Z")}
    )

    delivery = await send_tenant_alerts(world.svc)

    assert delivery is not None
    [(_, _, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    listed = {f["code"] for f in document["findings"]}
    assert listed == {"DirectorySyncStale", "SubscriptionAtRisk"}
    # the three the digest reported plus the two this alert lists (alerted before their grace)
    assert document["counts"]["open"] == 3 + 2


async def test_the_webhook_says_which_immediate_alert_it_is(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the schema's kinds: a receiver pages on 'data-loss' and files 'tenant' away; every
    # immediate alert used to say 'immediate'
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url + "/hook")
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = alert_world(with_mailbox_group(2), ALERT_CHANNELS=json.dumps(channels))
    users = sales(world)
    await recompute(world, users)
    world.directory.remove_member(MAILBOX_GROUP, users[0])
    world.directory.set_user_state(users[0], licenseAssignmentStates=[], assignedLicenses=[])

    await recompute(world, users)
    synced = world.clock.now() - timedelta(minutes=95)
    ServiceState(world.svc.tables.servicestate).put(
        "last-sync", {"completedAt": synced.isoformat().replace("+00:00", "Z")}
    )
    assert await send_tenant_alerts(world.svc) is not None

    documents = [json.loads(body) for _, _, body in receiver.to("/hook")]
    for document in documents:
        jsonschema.validate(document, SCHEMA)
    assert [d["kind"] for d in documents] == ["data-loss", "tenant"]


async def test_a_channel_failing_three_times_in_a_row_is_a_tenant_level_alert(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [{"type": "slack", "name": "ops", "urlSecretName": "ALERT_SLACK_URL"}]
    urls = {"ALERT_SLACK_URL": "/fail-slack"}
    world = await channel_world(receiver, monkeypatch, urls, channels)
    # the baseline summary and two digests: three failed posts in a row
    for n, user in enumerate((IRVIN, JONI)):
        record(world, error(user))
        world.clock.advance(GRACE_SECONDS)
        assert (await run_digest(world.svc)).status == "sent", n
    world.directory.sent_mail.clear()

    delivery = await send_tenant_alerts(world.svc)

    assert delivery is not None
    assert delivery.accepted
    [mail] = mails(world)
    assert "AlertChannelFailing" in html(mail)
    assert "Alert channel &#39;ops&#39; (slack) fails: 3 failed deliveries in a row" in html(mail)
    assert len(receiver.to("/fail-slack")) == 4 * 3  # and the tenant alert's own post


def channel_only_world(path: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> World:
    """No ALERT_SENDER: one webhook channel, posting to `path` on the receiver."""
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url + path)
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = build_world(ALERT_CHANNELS=json.dumps(channels))
    prime(world)
    return world


async def test_without_a_sender_the_channels_get_the_digest_once(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = channel_only_world("/hook", receiver, monkeypatch)
    await baseline(world)
    [(_, _, summary)] = receiver.to("/hook")
    assert json.loads(summary)["kind"] == "baseline"
    receiver.posts.clear()
    record(world, error(IRVIN), error(JONI))
    world.clock.advance(GRACE_SECONDS)

    outcome = await run_digest(world.svc)
    again = await run_digest(world.svc)

    assert outcome.status == "posted"
    assert again.status == "nothing-new"
    assert world.directory.sent_mail == []
    [(_, headers, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert headers[DIGEST_HEADER] == document["digestId"] == outcome.mail_id
    assert {f["user"]["id"] for f in document["findings"]} == {IRVIN, JONI}


async def test_without_a_sender_a_digest_no_channel_took_is_posted_again_under_its_id(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = channel_only_world("/fail-hook", receiver, monkeypatch)
    await baseline(world)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)

    refused = await run_digest(world.svc)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url + "/hook")
    taken = await run_digest(world.svc)
    again = await run_digest(world.svc)

    assert refused.status == "failed"
    assert (taken.status, taken.mail_id) == ("posted", refused.mail_id)
    assert again.status == "nothing-new"
    [(_, headers, body)] = receiver.to("/hook")
    assert headers[DIGEST_HEADER] == refused.mail_id
    assert [f["user"]["id"] for f in json.loads(body)["findings"]] == [IRVIN]


async def test_a_refused_mail_does_not_post_the_same_digest_to_the_channels_every_run(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALERT_RECIPIENTS outside the verified domains: the mail is refused each run, and the
    channels, which took the digest the first time, must not get it again each hour."""
    monkeypatch.setenv("ALERT_TEAMS_URL", receiver.url + "/teams")
    channels = [{"type": "teams", "urlSecretName": "ALERT_TEAMS_URL"}]
    world = alert_world(
        ALERT_CHANNELS=json.dumps(channels), ALERT_RECIPIENTS="someone@outside.example"
    )
    await baseline(world)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)

    first = await run_digest(world.svc)
    world.clock.advance(3600)
    second = await run_digest(world.svc)
    digests = [h[DIGEST_HEADER] for _, h, _ in receiver.to("/teams")]

    assert first.status == second.status == "refused"
    assert len([d for d in digests if d.startswith("digest-")]) == 1


async def test_a_poisoned_message_on_the_webhook_names_its_queue_not_a_group(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PoisonedMessage keeps its message's digest where a group id would be: the webhook's
    finding must say the queue, not give the digest as a group with a group link."""
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_WEBHOOK_URL": "/hook"}, channels)
    receiver.posts.clear()
    world.svc.queues.by_name(poison_name(RECOMPUTE_USERS)).put_raw("a message that failed")
    watch_poison(world.svc)

    await send_tenant_alerts(world.svc)

    [(_, _, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    [poisoned] = [f for f in document["findings"] if f["code"] == "PoisonedMessage"]
    assert "group" not in poisoned
    assert poisoned["queue"] == {"name": RECOMPUTE_USERS}


async def test_a_mail_retried_after_another_alert_was_posted_is_not_posted_to_a_channel_again(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant alert's mail fails, the digest goes out meanwhile, then the tenant alert is
    retried under its id: the channel, which took it the first time, must not get it again
    (it used to remember only the last id it took, of any kind)."""
    channels = [{"type": "teams", "urlSecretName": "ALERT_TEAMS_URL"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_TEAMS_URL": "/teams"}, channels)
    record(world, error(IRVIN))
    world.clock.advance(GRACE_SECONDS)
    synced = world.clock.now() - timedelta(minutes=95)
    ServiceState(world.svc.tables.servicestate).put(
        "last-sync", {"completedAt": synced.isoformat().replace("+00:00", "Z")}
    )
    world.directory.fail_next_send_mail(400)

    failed = await send_tenant_alerts(world.svc)
    digest = await run_digest(world.svc)
    retried = await send_tenant_alerts(world.svc)

    assert failed is not None
    assert retried is not None
    assert (failed.status, digest.status) == ("failed", "sent")
    assert (retried.status, retried.mail_id) == ("sent", failed.mail_id)
    posted = [h[DIGEST_HEADER] for _, h, _ in receiver.to("/teams")]
    assert digest.mail_id in posted
    assert posted.count(failed.mail_id) == 1


async def test_the_webhook_never_gives_a_user_id_as_the_display_name(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mail names twenty users a line and reads only their names; the webhook lists every
    finding, and gave each other user's object id as its displayName."""
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_WEBHOOK_URL": "/hook"}, channels)
    receiver.posts.clear()
    users = world.directory.users
    record(world, *(error(u) for u in users))
    world.clock.advance(GRACE_SECONDS)

    await run_digest(world.svc)

    [(_, _, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    shown = [f["user"] for f in document["findings"]]
    assert len(shown) == len(users) > 20
    for user in shown:
        assert user["displayName"] in (None, users[user["id"]]["displayName"])


async def test_a_failing_channel_removed_from_alert_channels_no_longer_stays_open(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An accepted post is what resolves AlertChannelFailing; a channel the admin removed
    from ALERT_CHANNELS (or renamed: its state and finding go by name) never posts again, so
    its finding stayed open for good: counted in every digest's "N open", listed on the
    report page. The tenant alerts resolve it; a channel still listed keeps its own."""
    channels = [
        {"type": "slack", "name": "ops", "urlSecretName": "ALERT_SLACK_URL"},
        {"type": "webhook", "name": "hook", "urlSecretName": "ALERT_WEBHOOK_URL"},
    ]
    urls = {"ALERT_SLACK_URL": "/fail-slack", "ALERT_WEBHOOK_URL": "/fail-hook"}
    world = await channel_world(receiver, monkeypatch, urls, channels)
    for user in (IRVIN, JONI):
        record(world, error(user))
        world.clock.advance(GRACE_SECONDS)
        await run_digest(world.svc)
    ledger = FindingsLedger(world.svc.tables.findings)
    assert ledger.open_findings("service:alert-channel:ops")
    assert ledger.open_findings("service:alert-channel:hook")

    kept = tuple(c for c in world.svc.settings.alert_channels if c.name == "hook")
    restarted = dataclasses.replace(
        world.svc, settings=dataclasses.replace(world.svc.settings, alert_channels=kept)
    )
    await send_tenant_alerts(restarted)

    assert ledger.open_findings("service:alert-channel:ops") == {}
    assert ledger.open_findings("service:alert-channel:hook")


async def test_channels_whose_names_differ_only_in_odd_characters_keep_their_own_findings(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finding's subject wrote each character but letters, digits, '_', '.' and '-' as
    '_': "#ops" and "_ops" shared one AlertChannelFailing, and the post "_ops" took resolved
    the finding of "#ops", still failing. Plain names keep their subject."""
    channels = [
        {"type": "slack", "name": "#ops", "urlSecretName": "ALERT_SLACK_URL"},
        {"type": "slack", "name": "_ops", "urlSecretName": "ALERT_TEAMS_URL"},
    ]
    urls = {"ALERT_SLACK_URL": "/fail-slack", "ALERT_TEAMS_URL": "/fail-teams"}
    world = await channel_world(receiver, monkeypatch, urls, channels)
    for user in (IRVIN, JONI):
        record(world, error(user))
        world.clock.advance(GRACE_SECONDS)
        await run_digest(world.svc)
    ledger = FindingsLedger(world.svc.tables.findings)
    hash_ops = ledger.open_findings("service:alert-channel:~23ops")
    under_ops = ledger.open_findings("service:alert-channel:_ops")
    assert hash_ops
    assert under_ops
    assert "'#ops'" in str(next(iter(hash_ops.values())).fields)
    assert "'_ops'" in str(next(iter(under_ops.values())).fields)

    monkeypatch.setenv("ALERT_TEAMS_URL", receiver.url + "/teams")
    record(world, error(DIEGO))
    world.clock.advance(GRACE_SECONDS)
    await run_digest(world.svc)

    assert receiver.to("/teams")
    assert ledger.open_findings("service:alert-channel:_ops") == {}
    assert ledger.open_findings("service:alert-channel:~23ops")


async def test_a_finding_under_the_old_subject_of_a_channel_is_resolved_by_the_tenant_alerts(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finding recorded before names were escaped ("#ops" as "_ops") belongs to no listed
    channel's subject any more: the tenant alerts resolve it, as a removed channel's, and
    the channel, still failing, has its finding under its own subject."""
    channels = [{"type": "slack", "name": "#ops", "urlSecretName": "ALERT_SLACK_URL"}]
    world = await channel_world(receiver, monkeypatch, {"ALERT_SLACK_URL": "/fail-slack"}, channels)
    ServiceState(world.svc.tables.servicestate).put("alerts-channel-~23ops", {"failures": 3})
    ledger = FindingsLedger(world.svc.tables.findings)
    old = Finding(
        code="AlertChannelFailing",
        severity=WARNING,
        subject="service:alert-channel:_ops",
        sku_id=None,
        group_id=None,
        message="Alert channel '#ops' (slack) fails: 3 failed deliveries in a row.",
        remedy="Check the URL.",
    )
    ledger.reconcile(old.subject, [old], now=world.svc.now(), run_id="alerts")
    assert ledger.open_findings("service:alert-channel:_ops")

    await send_tenant_alerts(world.svc)

    assert ledger.open_findings("service:alert-channel:_ops") == {}
    assert ledger.open_findings("service:alert-channel:~23ops")  # still failing: its own
