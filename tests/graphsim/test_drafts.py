"""graphsim's drafts: create (JSON and MIME), send, and the Drafts folder filtered on
`internetMessageId`, as Graph documents them.

Sources: https://learn.microsoft.com/graph/api/user-post-messages (201 and the message, the
draft lands in Drafts; MIME: base64 with `Content-Type: text/plain`; bad base64 answers 400
`ErrorMimeContentInvalidBase64String`; permission Mail.ReadWrite),
https://learn.microsoft.com/graph/api/message-send (202 Accepted, no body; the message is
saved in Sent Items, so the draft's id no longer answers: 404 `ErrorItemNotFound`; permission
Mail.Send), https://learn.microsoft.com/graph/api/mailfolder-list-messages (`$filter`,
`$select`; permissions Mail.ReadBasic.All, Mail.Read, Mail.ReadWrite).
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from typing import Any

import httpx
import jwt
import pytest

from graphsim.app import create_app

from .conftest import USERS, Harness, make_tenant

pytestmark = pytest.mark.anyio
SENDER = USERS[0]
SECRET = "graphsim-test-signing-secret-0123456789abcdef"  # loopback test secret


def mime(message_id: str = "<lg.1@contoso.example>") -> bytes:
    mail = EmailMessage()
    mail["Subject"] = "License Guard: 2 new issues"
    mail["From"] = "alerts@contoso.example"
    mail["To"] = "it@contoso.example, ops@contoso.example"
    mail["Message-ID"] = message_id
    mail["x-license-guard-digest"] = "digest-1"
    mail.set_content("2 new issues.")
    mail.add_alternative("<p>2 new <b>issues</b>.</p>", subtype="html")
    return base64.b64encode(bytes(mail))


def drafts_url(filter_: str | None = None) -> str:
    url = f"/users/{SENDER}/mailFolders/drafts/messages"
    return f"{url}?$filter={filter_}&$select=id,internetMessageId" if filter_ else url


async def create(sim: Harness, body: bytes | None = None) -> httpx.Response:
    return await sim.post(
        f"/users/{SENDER}/messages",
        content=body if body is not None else mime(),
        headers={"Content-Type": "text/plain"},
    )


async def test_a_mime_draft_is_created_found_by_message_id_sent_and_then_gone(
    sim: Harness,
) -> None:
    created = await create(sim)
    assert created.status_code == 201
    draft: dict[str, Any] = created.json()
    assert draft["isDraft"] is True
    assert draft["internetMessageId"] == "<lg.1@contoso.example>"
    assert draft["subject"] == "License Guard: 2 new issues"
    assert sim.sim.state.outbox == []  # a draft is not sent

    found = (await sim.get(drafts_url("internetMessageId eq '<lg.1@contoso.example>'"))).json()
    assert [d["id"] for d in found["value"]] == [draft["id"]]
    assert set(found["value"][0]) == {"id", "internetMessageId"}  # $select
    other = await sim.get(drafts_url("internetMessageId eq '<other@contoso.example>'"))
    assert other.json()["value"] == []

    sent = await sim.post(f"/users/{SENDER}/messages/{draft['id']}/send")
    assert (sent.status_code, sent.content) == (202, b"")
    [entry] = sim.sim.state.outbox
    assert entry["toRecipients"] == ["it@contoso.example", "ops@contoso.example"]
    assert entry["bodyContentType"] == "HTML"
    assert "<b>issues</b>" in entry["body"]
    assert entry["mimeParts"] == ["multipart/alternative", "text/plain", "text/html"]
    assert {"name": "x-license-guard-digest", "value": "digest-1"} in entry[
        "internetMessageHeaders"
    ]

    again = await sim.post(f"/users/{SENDER}/messages/{draft['id']}/send")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "ErrorItemNotFound"
    assert (await sim.get(drafts_url())).json()["value"] == []
    assert len(sim.sim.state.outbox) == 1


async def test_a_json_draft_is_created_and_sent(sim: Harness) -> None:
    message = {
        "subject": "JSON draft",
        "body": {"contentType": "HTML", "content": "<p>hi</p>"},
        "toRecipients": [{"emailAddress": {"address": "it@contoso.example"}}],
        "internetMessageHeaders": [{"name": "x-run", "value": "7"}],
    }
    created = await sim.post(f"/users/{SENDER}/messages", json=message)
    assert created.status_code == 201
    draft_id = created.json()["id"]
    assert created.json()["internetMessageId"].startswith("<")
    assert (await sim.post(f"/users/{SENDER}/messages/{draft_id}/send")).status_code == 202
    [entry] = sim.sim.state.outbox
    assert (entry["subject"], entry["body"]) == ("JSON draft", "<p>hi</p>")


async def test_bad_drafts_answer_graphs_errors(sim: Harness) -> None:
    bad = await create(sim, b"not base64!!")
    assert (bad.status_code, bad.json()["error"]["code"]) == (
        400,
        "ErrorMimeContentInvalidBase64String",
    )
    no_recipient = await sim.post(f"/users/{SENDER}/messages", json={"subject": "x"})
    assert no_recipient.json()["error"]["code"] == "ErrorInvalidRecipients"
    unknown = await sim.post(
        "/users/nobody@contoso.example/messages",
        content=mime(),
        headers={"Content-Type": "text/plain"},
    )
    assert unknown.status_code == 404
    missing = await sim.post(f"/users/{SENDER}/messages/AAMk-missing/send")
    assert missing.json()["error"]["code"] == "ErrorItemNotFound"
    unsupported = await sim.get(drafts_url("subject eq 'x'"))
    assert unsupported.status_code == 400
    assert sim.sim.state.outbox == []


async def test_a_create_whose_answer_is_lost_left_a_draft_that_a_lookup_finds(
    sim: Harness,
) -> None:
    """applyReset: Graph created the draft and the connection dropped (test_lost_answers)."""
    sim.sim.faults.configure({"next": ["applyReset"]})
    with pytest.raises(ConnectionResetError):
        await create(sim)
    found = (await sim.get(drafts_url("internetMessageId eq '<lg.1@contoso.example>'"))).json()
    assert len(found["value"]) == 1


async def test_drafts_need_mail_readwrite_and_sending_needs_mail_send() -> None:
    app = create_app(make_tenant(), token=SECRET)
    now = int(time.time())

    def bearer(*roles: str) -> dict[str, str]:
        claims = {"aud": "https://graph.microsoft.com", "exp": now + 60, "appid": "app-1"}
        return {"Authorization": f"Bearer {jwt.encode(claims | {'roles': list(roles)}, SECRET)}"}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t/v1.0"
    ) as c:
        plain = {"Content-Type": "text/plain"}
        url = f"/users/{SENDER}/messages"
        denied = await c.post(url, content=mime(), headers=bearer("Mail.Send") | plain)
        assert denied.status_code == 403
        created = await c.post(url, content=mime(), headers=bearer("Mail.ReadWrite") | plain)
        assert created.status_code == 201
        listed = await c.get(drafts_url(), headers=bearer("Mail.ReadWrite"))
        assert listed.status_code == 200
        send = f"{url}/{created.json()['id']}/send"
        assert (await c.post(send, headers=bearer("Mail.ReadWrite"))).status_code == 403
        assert (await c.post(send, headers=bearer("Mail.Send"))).status_code == 202
    await app.state.sim.close()
