"""Preflight's sender checks for an `ALERT_SENDER` whose UPN starts with `$`: Graph reads
`/users/$svc@...` as a system segment (400) and finds the mailbox only in the key form
`/users('$svc@...')` (learn.microsoft.com/graph/api/user-get), so the checks ask in that form
(through the service's own Graph client, against graphsim)."""

from __future__ import annotations

import asyncio
from typing import Any

from graphsim.server import serve_in_thread
from shared.adapters.graph_auth import graph_endpoint
from shared.bootstrap import graph_probe
from shared.cli.preflight_checks import PASS, Check, Target, graph_checks
from tests.graphsim.conftest import make_tenant

SENDER = "$svc.o'brien@contoso.example"
SENDER_ID = "7b0c6f55-3f0e-4f64-9d1e-0a3f3c2b1d22"
TOKEN = "preflight-sender-token"


def tenant() -> dict[str, Any]:
    out = make_tenant()
    out["users"].append(
        {
            **out["users"][0],
            "id": "7b0c6f55-3f0e-4f64-9d1e-0a3f3c2b1d22",
            "userPrincipalName": SENDER,
        }
    )
    return out


def checks_for(url: str, sender: str) -> dict[str, Check]:
    target = Target(
        endpoint=graph_endpoint(url),
        static_token=TOKEN,
        mode="observe",
        tenant_id=None,
        alert_sender=sender,
        storage=None,
        storage_problem=None,
        client_state=None,
        notification_urls={},
    )

    async def run() -> list[Check]:
        probe = graph_probe(url, static_token=TOKEN, credential=None)
        try:
            return await graph_checks(target, probe, ["Mail.Send", "Mail.ReadWrite"])
        finally:
            await probe.aclose()

    return {c.name: c for c in asyncio.run(run())}


def test_a_sender_starting_with_a_dollar_is_found_by_the_mail_checks() -> None:
    with serve_in_thread(tenant(), token=TOKEN) as url:
        checks = checks_for(url, SENDER)
    send, drafts = checks["Graph Mail.Send"], checks["Graph Mail.ReadWrite"]
    assert send.mark == PASS, send
    assert f"sender mailbox {SENDER} exists" in send.detail
    assert drafts.mark == PASS, drafts
