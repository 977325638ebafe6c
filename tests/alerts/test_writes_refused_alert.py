"""Writes Graph refuses are one tenant-level alert: mailed at once by the tenant alerts, posted
to the channels as kind 'tenant' with the permission to grant, and not again while the refusal
lasts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared.service.alerts.digest import run_digest
from shared.service.refused_writes import REFUSAL_PAUSE, REPROCESS_REFUSED, WRITES_REFUSED
from shared.service.reprocessing import reprocess_user
from shared.service.tenant_alerts import send_tenant_alerts
from tests.alerts.mail import html, mails
from tests.alerts.receiver import Receiver
from tests.alerts.world import GRACE_SECONDS, RECIPIENT, SENDER, baseline, prime
from tests.demo_tenant import ADELE, DIEGO, IRVIN
from tests.service.test_reprocess_refused import Refusing, manual
from tests.service.world import build_world

SCHEMA = json.loads(Path("docs/alert-webhook.schema.json").read_text())

pytestmark = pytest.mark.anyio


async def test_writes_refused_is_one_tenant_level_alert_with_the_permission_to_grant(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url + "/hook")
    channels = [{"type": "webhook", "urlSecretName": "ALERT_WEBHOOK_URL", "minSeverity": "info"}]
    world = build_world(
        fake=Refusing,
        LICENSE_GUARD_MODE="act",
        ALERT_SENDER=SENDER,
        ALERT_RECIPIENTS=RECIPIENT,
        ALERT_CHANNELS=json.dumps(channels),
    )
    prime(world)
    await baseline(world)
    receiver.posts.clear()
    [first] = manual(DIEGO)
    assert (await reprocess_user(world.svc, first)).status == "refused"

    delivery = await send_tenant_alerts(world.svc)

    assert delivery is not None
    assert delivery.accepted
    [mail] = mails(world)
    assert WRITES_REFUSED in html(mail)
    assert "User.ReadWrite.All" in html(mail)
    assert "license-guard preflight --principal-id ID --mode act" in html(mail)
    [(_, _, body)] = receiver.to("/hook")
    document = json.loads(body)
    jsonschema.validate(document, SCHEMA)
    assert document["kind"] == "tenant"
    [refused] = [f for f in document["findings"] if f["code"] == WRITES_REFUSED]
    assert refused["key"] == "service:reprocess|-|WritesRefused|-"

    world.clock.advance(REFUSAL_PAUSE.total_seconds())
    [probe] = manual(ADELE)
    assert (await reprocess_user(world.svc, probe)).status == "refused"  # refused again
    world.directory.sent_mail.clear()
    receiver.posts.clear()
    assert await send_tenant_alerts(world.svc) is None  # still the one alert
    assert mails(world) == []
    assert receiver.to("/hook") == []


async def test_a_refusal_of_one_user_is_that_users_digest_row_not_a_tenant_alert() -> None:
    """Graph refuses one user although the app holds the permission: no tenant-level alert;
    the user's ReprocessRefused is mailed by the digest after the grace, as the user's."""
    world = build_world(LICENSE_GUARD_MODE="act", ALERT_SENDER=SENDER, ALERT_RECIPIENTS=RECIPIENT)
    world.directory.granted_app_roles = frozenset({"User.ReadWrite.All"})
    world.directory.protected_users = frozenset({IRVIN})
    prime(world)
    await baseline(world)
    [refused] = manual(IRVIN)
    assert (await reprocess_user(world.svc, refused)).status == "refused"

    await send_tenant_alerts(world.svc)  # the demo tenant's own tenant-level conditions
    assert not any(WRITES_REFUSED in html(m) for m in mails(world))
    world.directory.sent_mail.clear()
    world.clock.advance(GRACE_SECONDS)
    outcome = await run_digest(world.svc)

    assert outcome.status == "sent"
    [mail] = mails(world)
    assert REPROCESS_REFUSED in html(mail)
    assert "Irvin Sayers" in html(mail)
    assert WRITES_REFUSED not in html(mail)
