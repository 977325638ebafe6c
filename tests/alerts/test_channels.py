"""Alert channels besides mail: the Teams card, Slack blocks and generic webhook payloads (size
limits, escaping, the webhook's JSON Schema in docs/, the HMAC signature), and delivery over
real HTTP to a local receiver: per-channel state, retries, dedupe by digest id, one failing
channel isolated and raising an alert after repeated failure."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from markdown_it import MarkdownIt

from shared.fakes.tables import InMemoryTable
from shared.platform.channel_config import Channel, parse_channels
from shared.render.channel_finding import ChannelFinding
from shared.render.channel_payloads import (
    DIGEST_HEADER,
    SIGNATURE_HEADER,
    SLACK_MAX_BLOCKS,
    TEAMS_MAX_BYTES,
    slack_message,
    teams_message,
    verify,
    webhook_payload,
)
from shared.render.channel_sections import SLACK_MAX_TEXT
from shared.render.mail import MailView, RowView, Section, UserName
from shared.service.alerts.channel_delivery import NOTHING, deliver_to_channels
from shared.service.alerts.channels import http_post
from shared.service.alerts.sending import ALREADY_SENT, FAILED, SENT
from shared.service.stores import ServiceState
from tests.alerts.receiver import Receiver

SCHEMA = json.loads(Path("docs/alert-webhook.schema.json").read_text())
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
REPORT = "https://example.invalid/reports/latest/report.html"

pytestmark = pytest.mark.anyio


def row(n: int, severity: str = "error", users: int = 3) -> RowView:
    return RowView(
        severity=severity,
        code="CountViolation",
        group=f"Licensing_E3_{n}",
        product="Office 365 E3",
        count=users,
        users=tuple(UserName(f"User <{k}> & co", f"u{k}@contoso.com") for k in range(users)),
        more=0,
        cause="No free seats were left when Entra tried to assign the license.",
        example="",
        fix="Buy seats in the Microsoft 365 admin center, then reprocess. " * 3,
        action="queued a reprocess",
    )


def view(rows: int, severity: str = "error") -> MailView:
    return MailView(
        title="3 new licensing issues",
        tenant="Contoso",
        lead=("What changed since 05:00 UTC.",),
        sections=(Section("New", items=tuple(row(n, severity) for n in range(rows))),),
    )


def finding(n: int, severity: str = "error", status: str = "new") -> ChannelFinding:
    return ChannelFinding(
        key=f"u{n}|sku|CountViolation|g",
        code="CountViolation",
        severity=severity,
        status=status,
        user_id=f"0000000{n}-0000-4000-8000-000000000000",
        user_name=f"User {n}",
        user_principal_name=f"u{n}@contoso.com",
        group_id="11111111-0000-4000-8000-000000000000",
        group_name="Licensing_E3",
        sku_id="6fd2c87f-b296-42f0-b197-1e91e994b900",
        product="Office 365 E3",
    )


def payload(
    findings: list[ChannelFinding],
    minimum: str = "info",
    *,
    report_url: str | None = REPORT,
    open_counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    return webhook_payload(
        digest_id="digest-1",
        kind="digest",
        tenant="Contoso",
        title="t",
        generated_at=NOW.isoformat(),
        findings=findings,
        minimum=minimum,
        report_url=report_url,
        open_counts=open_counts,
    )


# --------------------------------------------------------------------------- payloads


def test_the_teams_card_carries_the_rows_and_stays_under_28_kb() -> None:
    small = teams_message(view(2), report_url=REPORT)
    big = teams_message(view(500), report_url=REPORT)

    card = small["attachments"][0]["content"]
    assert small["type"] == "message"
    assert small["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    text = json.dumps(card)
    assert "Licensing_E3_0" in text
    assert "Licensing_E3_1" in text
    assert "Buy seats" in text
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Open the report page",
        "url": REPORT,
    }
    assert len(orjson.dumps(big)) <= TEAMS_MAX_BYTES
    notes = [
        b["text"]
        for b in big["attachments"][0]["content"]["body"]
        if "left out" in b.get("text", "")
    ]
    assert len(notes) == 1
    assert "Open the report page" in notes[0]
    shown = sum(1 for b in big["attachments"][0]["content"]["body"] if b["type"] == "Container")
    assert notes[0].startswith(f"{500 - shown} more rows")


def test_directory_text_cannot_put_a_link_of_its_own_on_the_teams_card() -> None:
    # Teams renders Markdown in TextBlocks and facts ([text](url), <url>): a display name must
    # not turn into a link in the admins' channel (the mail escapes HTML, Slack its mrkdwn)
    bait = "[Reset your password](https://evil.example/login)"
    hostile = MailView(
        title="1 new licensing issue",
        tenant="<https://evil.example/tenant>",
        lead=("What changed since 05:00 UTC.",),
        sections=(
            Section(
                "New",
                items=(
                    dataclasses.replace(
                        row(0, users=1),
                        group=bait,
                        users=(UserName(bait, "u0@contoso.com"),),
                        fix=f"change the membership of '{bait}' in the Entra admin center",
                    ),
                ),
            ),
        ),
    )

    card = teams_message(hostile)["attachments"][0]["content"]

    texts = [b["text"] for b in _text_blocks(card["body"])]
    texts += [f["value"] for b in _blocks(card["body"]) for f in b.get("facts", ())]
    rendered = [MarkdownIt().render(t) for t in texts]
    assert not [html for html in rendered if "<a " in html]
    assert any("Reset your password" in t for t in texts)


def _blocks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found += _blocks(item.get("items", []))
    return found


def _text_blocks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in _blocks(items) if b["type"] == "TextBlock"]


def test_slack_blocks_stay_within_50_and_escape_directory_text() -> None:
    small = slack_message(view(2), report_url=REPORT)
    big = slack_message(view(500), report_url=REPORT)

    text = json.dumps(small)
    assert "User &lt;0&gt; &amp; co" in text
    assert "User <0>" not in text
    assert small["blocks"][0]["type"] == "header"
    assert small["blocks"][-1]["elements"][0]["url"] == REPORT
    assert len(big["blocks"]) == SLACK_MAX_BLOCKS
    assert any("more rows left out" in json.dumps(b) for b in big["blocks"])
    assert all(len(b["text"]["text"]) <= 3000 for b in big["blocks"] if b["type"] == "section")


@pytest.mark.parametrize("spare", [1, 2, 3, 4])
def test_slack_text_cut_at_3000_characters_never_splits_an_escape(spare: int) -> None:
    """A lead or row longer than a section's 3,000 characters was cut at the 3,000th: an
    '&' escaped as '&amp;' near the end lost its tail ('&am'), which Slack shows as it is."""
    long = "x" * (SLACK_MAX_TEXT - spare) + "& <b> and more"
    one = dataclasses.replace(row(0, users=1), fix=long)
    text = dataclasses.replace(view(0), lead=(long,), sections=(Section("New", items=(one,)),))

    message = slack_message(text)

    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    for shown in sections:
        assert len(shown) <= SLACK_MAX_TEXT
        assert re.sub(r"&(amp|lt|gt);", "", shown).count("&") == 0
    assert sections[0] == "x" * (SLACK_MAX_TEXT - spare)  # cut before the escape


def test_the_slack_notification_text_escapes_the_tenant_name_too() -> None:
    """The message's top-level text (what a phone's notification shows) is mrkdwn as well:
    an organization named 'R&D <!channel>' pinged the whole channel there."""
    named = dataclasses.replace(view(1), tenant="R&D <!channel>")

    message = slack_message(named)

    assert "<!channel>" not in message["text"]
    assert "R&amp;D &lt;!channel&gt;" in message["text"]


def test_min_severity_filters_rows() -> None:
    warnings_only = view(3, severity="warning")
    card = teams_message(warnings_only, minimum="error")["attachments"][0]["content"]
    assert not [b for b in card["body"] if b["type"] == "Container"]


def test_the_webhook_payload_follows_its_schema() -> None:
    document = payload([finding(1), finding(2, "warning", "resolved"), finding(3, "info", "open")])

    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        document
    )
    assert document["counts"] == {"new": 1, "resolved": 1, "open": 1}
    assert document["findings"][0]["user"]["link"].endswith(
        "/userId/00000001-0000-4000-8000-000000000000"
    )


def test_the_schema_rejects_what_the_contract_does_not_allow() -> None:
    document = payload([finding(1)])
    document["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in payload([]).items() if k != "digestId"}, SCHEMA)


def test_min_severity_on_the_webhook() -> None:
    document = payload([finding(1, "info"), finding(2, "error")], minimum="warning")
    assert [f["severity"] for f in document["findings"]] == ["error"]


def test_the_webhook_counts_every_open_finding_it_is_given_not_only_those_it_lists() -> None:
    open_counts = {"error": 4, "warning": 3, "info": 5}
    listed = [finding(1, "error"), finding(2, "warning")]

    def document(minimum: str) -> dict[str, Any]:
        return payload(listed, minimum, report_url=None, open_counts=open_counts)

    jsonschema.validate(document("info"), SCHEMA)
    assert document("info")["counts"] == {"new": 2, "resolved": 0, "open": 12}
    assert document("warning")["counts"] == {"new": 2, "resolved": 0, "open": 7}
    assert document("error")["counts"] == {"new": 1, "resolved": 0, "open": 4}


# --------------------------------------------------------------------------- delivery


async def httpx_post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, float | None]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=dict(headers))
    retry = response.headers.get("Retry-After")
    return response.status_code, float(retry) if retry else None


async def no_sleep(_: float) -> None:
    return None


CHANNELS = json.dumps(
    [
        {"type": "teams", "urlSecretName": "TEAMS_URL", "minSeverity": "warning"},
        {"type": "slack", "name": "slack-ops", "urlSecretName": "SLACK_URL"},
        {
            "type": "webhook",
            "urlSecretName": "HOOK_URL",
            "minSeverity": "info",
            "signingSecretName": "HOOK_SECRET",
        },
    ]
)


async def test_each_channel_gets_its_payload_once_and_a_failing_one_is_isolated(
    receiver: Receiver,
) -> None:
    channels = parse_channels(CHANNELS)
    settings = {
        "TEAMS_URL": receiver.url + "/teams",
        "SLACK_URL": receiver.url + "/fail-slack",
        "HOOK_URL": receiver.url + "/hook",
        "HOOK_SECRET": "s3cret-shared-with-the-receiver",
    }
    state = ServiceState(InMemoryTable("servicestate"))
    failing: list[tuple[str, str]] = []
    mail_view = view(2)
    findings = [finding(1), finding(2, "warning")]

    def payload_for(channel: Channel) -> dict[str, Any] | None:
        if channel.type == "teams":
            return teams_message(mail_view, minimum=channel.min_severity, report_url=REPORT)
        if channel.type == "slack":
            return slack_message(mail_view, minimum=channel.min_severity, report_url=REPORT)
        return payload(findings, channel.min_severity)

    async def send(digest_id: str) -> dict[str, str]:
        results = await deliver_to_channels(
            state,
            channels,
            digest_id,
            payload_for,
            settings=settings,
            post=httpx_post,
            now=lambda: NOW,
            on_failing=lambda c, why: failing.append((c.name, why)),
            sleep=no_sleep,
        )
        return {r.channel: r.status for r in results}

    first = await send("digest-1")
    again = await send("digest-1")

    assert first == {"teams-0": SENT, "slack-ops": FAILED, "webhook-2": SENT}
    assert again == {"teams-0": ALREADY_SENT, "slack-ops": FAILED, "webhook-2": ALREADY_SENT}
    assert len(receiver.to("/teams")) == 1
    assert len(receiver.to("/hook")) == 1
    assert len(receiver.to("/fail-slack")) == 6  # three attempts, twice
    _, headers, body = receiver.to("/hook")[0]
    assert headers[DIGEST_HEADER] == "digest-1"
    assert verify("s3cret-shared-with-the-receiver", body, headers[SIGNATURE_HEADER])
    assert not verify("s3cret-shared-with-the-receiver", body + b" ", headers[SIGNATURE_HEADER])
    jsonschema.validate(json.loads(body), SCHEMA)
    assert (
        json.loads(receiver.to("/teams")[0][2])["attachments"][0]["content"]["type"]
        == "AdaptiveCard"
    )
    assert failing == []

    third = await send("digest-2")
    assert third["slack-ops"] == FAILED
    assert [name for name, _ in failing] == ["slack-ops"]
    assert "3 failed deliveries in a row, the last: HTTP 500" in failing[0][1]

    settings["SLACK_URL"] = receiver.url + "/slack"
    fourth = await send("digest-3")
    assert fourth == {"teams-0": SENT, "slack-ops": SENT, "webhook-2": SENT}
    state_fields = state.get("alerts-channel-slack-ops")
    assert state_fields is not None
    assert state_fields.fields["failures"] == 0


async def test_a_channel_without_a_url_or_below_its_severity_sends_nothing(
    receiver: Receiver,
) -> None:
    channels = parse_channels(CHANNELS)
    state = ServiceState(InMemoryTable("servicestate"))
    results = await deliver_to_channels(
        state,
        channels,
        "digest-9",
        lambda c: None if c.type == "teams" else payload([finding(1)]),
        settings={"TEAMS_URL": receiver.url + "/teams", "HOOK_URL": "", "SLACK_URL": "ftp://x"},
        post=httpx_post,
        now=lambda: NOW,
        sleep=no_sleep,
    )

    assert {r.channel: r.status for r in results} == {
        "teams-0": NOTHING,
        "slack-ops": "no-url",
        "webhook-2": "no-url",
    }
    assert receiver.posts == []


async def test_a_signing_secret_key_vault_could_not_resolve_signs_nothing(
    receiver: Receiver,
) -> None:
    """App Service passes the reference text on when it cannot read the secret (not created,
    disabled, no role): signing with that public text would be no signature at all."""
    hook = parse_channels(CHANNELS)[2:]
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv-lg.vault.azure.net/secrets/alert-webhook-secret/)"
    )
    state = ServiceState(InMemoryTable("servicestate"))
    results = await deliver_to_channels(
        state,
        hook,
        "digest-7",
        lambda c: payload([finding(1)]),
        settings={"HOOK_URL": receiver.url + "/hook", "HOOK_SECRET": reference},
        post=httpx_post,
        now=lambda: NOW,
        sleep=no_sleep,
    )

    assert [r.status for r in results] == [FAILED]
    assert "HOOK_SECRET" in results[0].reason
    assert "Key Vault reference" in results[0].reason
    assert receiver.posts == []


async def test_a_channel_url_key_vault_could_not_resolve_is_named_as_such(
    receiver: Receiver,
) -> None:
    """infra/app/api.bicep sets every channel URL setting to a Key Vault reference, whether
    or not its secret was created: a channel listed before its secret exists gets the
    reference text. Its failure names that, as the signing secret's does, not "no https URL"
    (the admin would look for a typo in a URL that is not there)."""
    teams = parse_channels(CHANNELS)[:1]
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv-lg.vault.azure.net/secrets/alert-teams-url/)"
    )
    results = await deliver_to_channels(
        ServiceState(InMemoryTable("servicestate")),
        teams,
        "digest-8",
        lambda c: payload([finding(1)]),
        settings={"TEAMS_URL": reference},
        post=httpx_post,
        now=lambda: NOW,
        sleep=no_sleep,
    )

    assert [r.status for r in results] == ["no-url"]
    assert "TEAMS_URL" in results[0].reason
    assert "Key Vault reference the platform could not resolve" in results[0].reason
    assert "https URL" not in results[0].reason
    assert receiver.posts == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1.example.invalid/hook", "http://127.0.0.1@example.invalid/hook"]
)
async def test_plain_http_goes_to_the_loopback_only_not_to_a_host_that_starts_like_it(
    url: str,
) -> None:
    """Plain http is let through for a local receiver (tests, `make demo`), checked as a
    prefix: a host named "127.0.0.1.example.invalid", or "127.0.0.1@" as a user name before
    another host, was posted to in clear text."""
    posted: list[str] = []

    async def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, float | None]:
        posted.append(url)
        return 202, None

    [result] = await deliver_to_channels(
        ServiceState(InMemoryTable("servicestate")),
        parse_channels(CHANNELS)[:1],
        "digest-1",
        lambda c: payload([finding(1)]),
        settings={"TEAMS_URL": url},
        post=post,
        now=lambda: NOW,
        sleep=no_sleep,
    )

    assert posted == []
    assert result.status == "no-url"
    assert result.reason == "app setting TEAMS_URL holds no https URL"


async def test_a_url_httpx_cannot_post_to_counts_as_a_failure_and_is_alerted() -> None:
    """A secret stored with a line break inside (pasted wrapped) or a mistyped port passes the
    https:// check but is no URL: the post raised httpx.InvalidURL, which skipped the failure
    count, so the channel failed at every alert and no AlertChannelFailing ever said so."""
    teams = parse_channels(CHANNELS)[:1]
    state = ServiceState(InMemoryTable("servicestate"))
    failing: list[str] = []
    secret_part = "sig=SECRET-PART"
    url = f"https://prod.westeurope.logic.invalid/workflows/1/triggers\n/paths/invoke?{secret_part}"

    results = [
        await deliver_to_channels(
            state,
            teams,
            f"digest-{n}",
            lambda c: payload([finding(1)]),
            settings={"TEAMS_URL": url},
            post=http_post,
            now=lambda: NOW,
            on_failing=lambda c, why: failing.append(why),
            sleep=no_sleep,
        )
        for n in range(3)
    ]

    assert [r.status for [r] in results] == [FAILED] * 3
    assert "app setting TEAMS_URL holds no valid URL" in results[0][0].reason
    assert len(failing) == 1
    assert "3 failed deliveries in a row" in failing[0]
    assert secret_part not in failing[0]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    """A port that reads each request and closes the connection without an answer."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return int(server.getsockname()[1])


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("refused", "connection refused"),
        ("silent", "timed out"),
        ("plain-http", "TLS handshake failed"),
        ("no-such-host", "DNS lookup of the URL's host failed"),
        ("hanging-up", "the receiver broke off the HTTP exchange (no answer)"),
    ],
)
async def test_a_connection_failure_names_its_kind_and_nothing_of_the_url(
    where: str, problem: str, receiver: Receiver, silent_port: int, hanging_up_port: int
) -> None:
    """Every connection failure, timeouts included, read "connection failed: OSError": the
    post wrapped each as a plain OSError, and the admin could not tell a mistyped host from a
    receiver that is down, a proxy breaking TLS or one too slow to answer."""
    secret = "SECRET-PART"
    port = receiver.url.rpartition(":")[2]
    url = {
        "refused": f"http://127.0.0.1:{closed_port()}/{secret}",
        "silent": f"http://127.0.0.1:{silent_port}/{secret}",
        "plain-http": f"https://127.0.0.1:{port}/{secret}",
        "no-such-host": f"https://{secret.lower()}.invalid/{secret}",
        "hanging-up": f"http://127.0.0.1:{hanging_up_port}/{secret}",
    }[where]
    teams = parse_channels(CHANNELS)[:1]
    state = ServiceState(InMemoryTable("servicestate"))

    async def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, float | None]:
        return await http_post(url, body, headers, wait=0.5)

    [result] = await deliver_to_channels(
        state,
        teams,
        "digest-1",
        lambda c: payload([finding(1)]),
        settings={"TEAMS_URL": url},
        post=post,
        now=lambda: NOW,
        sleep=no_sleep,
    )

    assert result.status == FAILED
    assert result.reason == f"connection failed: {problem}"
    entity = state.get("alerts-channel-teams-0")
    assert entity is not None
    assert entity.fields["lastError"] == result.reason
    assert secret.lower() not in result.reason.lower()


async def test_a_channel_named_like_a_slack_channel_is_delivered_and_deduplicated(
    receiver: Receiver,
) -> None:
    """A channel's state is a table row named after it, and Azure Tables refuses '#', '/',
    '\\' and '?' in a key: a channel named "#it-licensing" failed every post with InvalidKey
    before it was sent, uncounted, so no AlertChannelFailing ever said so."""
    [slack] = parse_channels(
        json.dumps([{"type": "slack", "name": "#it-licensing", "urlSecretName": "SLACK_URL"}])
    )
    state = ServiceState(InMemoryTable("servicestate"))

    async def send(digest_id: str, path: str) -> str:
        [result] = await deliver_to_channels(
            state,
            [slack],
            digest_id,
            lambda c: slack_message(view(1), minimum=c.min_severity),
            settings={"SLACK_URL": receiver.url + path},
            post=httpx_post,
            now=lambda: NOW,
            sleep=no_sleep,
        )
        return result.status

    assert [await send("digest-1", "/slack"), await send("digest-1", "/slack")] == [
        SENT,
        ALREADY_SENT,
    ]
    assert len(receiver.to("/slack")) == 1
    assert await send("digest-2", "/fail-slack") == FAILED
    [name] = state.names("alerts-channel-")
    entity = state.get(name)
    assert entity is not None
    assert entity.fields["failures"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"type": "teams"}', "must be a JSON list"),
        ('[{"type": "discord", "urlSecretName": "X"}]', "type must be one of"),
        ('[{"type": "slack"}]', "urlSecretName"),
        ('[{"type": "slack", "urlSecretName": "X", "minSeverity": "high"}]', "minSeverity"),
        ('[{"type": "slack", "urlSecretName": "X", "signingSecretName": "S"}]', "for webhook"),
        (json.dumps([{"type": "slack", "urlSecretName": s} for s in "XY"]), "used twice"),
    ],
)
def test_bad_alert_channels_are_named(text: str, message: str) -> None:
    if message == "used twice":
        text = text.replace('"Y"}', '"Y", "name": "slack-0"}')
    with pytest.raises(ValueError, match=message):
        parse_channels(text)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"type": "slack", "urlSecretName": "https://hooks.slack.com/services/T0/B0/SeCrEt42"},
         "urlSecretName"),
        ({"type": "webhook", "urlSecretName": "HOOK_URL",
          "signingSecretName": "q9+SeCrEt42/Zx="}, "signingSecretName"),
    ],
)  # fmt: skip
def test_a_url_or_secret_pasted_where_a_setting_name_goes_is_refused_unshown(
    entry: dict[str, str], field: str
) -> None:
    """Taken as a setting's name, the pasted URL (or signing secret) came back in the channel's
    failure: 'app setting https://hooks.slack.com/services/... holds no https URL', logged,
    kept in servicestate and mailed to the admins as an AlertChannelFailing finding."""
    with pytest.raises(ValueError, match=field) as caught:
        parse_channels(json.dumps([entry]))

    assert "SeCrEt42" not in str(caught.value)


def test_a_row_of_one_finding_about_many_users_counts_its_users_on_teams_and_slack() -> None:
    """A NestedGroupMember (weekly summary) is one finding naming the users it leaves out: the
    card and the Slack section said '1 user(s): <twenty names> and 80 more'."""
    from shared.core.alerting import LedgerRow
    from shared.render.mail import MailNames
    from shared.render.mail_rows import row_views

    nested = LedgerRow(
        key="group:g|-|NestedGroupMember|n",
        subject="group:g",
        code="NestedGroupMember",
        severity="info",
        sku_id=None,
        group_id="g",
        message="Licensed group has group member Sales.",
        remedy="Add those users directly.",
        first_seen=NOW,
        user_ids=tuple(f"u{k}" for k in range(100)),
    )
    shown = MailView(
        "Weekly", "Contoso", (), (Section("Standing", items=row_views([nested], MailNames())),)
    )

    card = json.dumps(teams_message(shown))
    slack = json.dumps(slack_message(shown))

    for text in (card, slack):
        assert "100 users: u0" in text
        assert "1 user:" not in text
