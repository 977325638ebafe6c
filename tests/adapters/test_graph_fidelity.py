"""`GraphDirectory` against graphsim where graphsim answers as Graph does and an easy
simulator would not: `$batch` answers in any order, a final 429 or 503 said as it is, keys
starting with `$` in Graph's key form, directory roles among a user's memberships."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from graphsim.client import SimClient
from graphsim.server import serve_in_thread
from shared.adapters.graph import GraphDirectory, build_graph_client
from shared.ports.directory import DirectoryError
from tests.adapters.test_directory_contract import (
    EXTRA_USERS,
    TENANT,
    alert_message,
    alert_mime,
    throttled,
)
from tests.sleeps import Sleeps

pytestmark = pytest.mark.anyio

TOKEN = "fidelity-test-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


DOLLAR_SENDER = "$svc.o'brien@contoso.com"
"""A mailbox whose UPN starts with `$` (and holds a quote): Graph takes it only in the key
form `/users('$svc.o''brien@contoso.com')` (learn.microsoft.com/graph/api/user-get)."""
DOLLAR_ID = "5f1f5c9e-3c1d-4d35-9d8e-2f6a3b7c0d11"
ROLE = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
UNIT = "0b8c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


def tenant() -> dict[str, Any]:
    out = copy.deepcopy(TENANT)
    out["users"].append(
        {
            **out["users"][0],
            "id": DOLLAR_ID,
            "userPrincipalName": DOLLAR_SENDER,
            "displayName": "Service mailbox",
            "assignedLicenses": [],
            "licenseAssignmentStates": [],
        }
    )
    out["directoryRoles"] = [
        {"id": ROLE, "displayName": "License Administrator", "members": [EXTRA_USERS[0]]}
    ]
    out["administrativeUnits"] = [{"id": UNIT, "displayName": "Sales", "members": [EXTRA_USERS[0]]}]
    return out


@pytest.fixture
async def graphsim() -> AsyncIterator[tuple[str, SimClient]]:
    with serve_in_thread(tenant()) as url, SimClient(url) as sim:
        yield url, sim


def graph_directory(url: str, **kwargs: Any) -> GraphDirectory:
    return GraphDirectory(build_graph_client(url, static_token=TOKEN), page_size=50, **kwargs)


async def test_batch_items_still_unavailable_are_not_called_throttled(
    graphsim: tuple[str, SimClient],
) -> None:
    """Items answered 503 after every re-send: a 503 (Graph was unavailable), not "429 still
    throttled", with the wait Graph named."""
    url, sim = graphsim
    with throttled(sim, rate503=1.0, retryAfter=2, seed=1):
        async with graph_directory(url, sleep=Sleeps(), max_batch_resends=1) as directory:
            with pytest.raises(DirectoryError) as err:
                await directory.users_by_id(EXTRA_USERS[:3])
    sim.set_faults(rate503=0)
    assert err.value.status == 503
    assert err.value.is_transient
    assert "throttled" not in str(err.value)
    assert "unavailable" in str(err.value)
    assert "2 s" in str(err.value)


async def test_a_final_429_says_how_long_graph_asked_to_wait(
    graphsim: tuple[str, SimClient],
) -> None:
    """Graph's 429 body says only "Please retry again later."; the error an admin reads (the
    CLI prints it) also says how long Graph asked to wait."""
    url, sim = graphsim
    with throttled(sim, rate429=1.0, retryAfter=40, seed=1):
        async with graph_directory(url, sleep=Sleeps(), max_batch_resends=1) as directory:
            with pytest.raises(DirectoryError) as err:
                await directory.users_by_id(EXTRA_USERS[:3])
    assert err.value.status == 429
    assert err.value.retry_after == 40.0
    assert "40 s" in str(err.value)


async def test_batched_reads_come_back_in_the_order_asked(
    graphsim: tuple[str, SimClient],
) -> None:
    """Graph answers `$batch` items in any order (graphsim never in the request order):
    `users_by_id` and `member_of` match them by id and keep the order they were asked in,
    so what a command lists (`reprocess --user a b c`) does not change from run to run."""
    url, _ = graphsim
    wanted = EXTRA_USERS[:30]
    async with graph_directory(url) as directory:
        found = await directory.users_by_id(wanted)
        member_of = await directory.member_of(wanted)
    assert list(found) == wanted
    assert [u["id"] for u in found.values()] == wanted
    assert list(member_of) == wanted


async def test_alert_mail_from_a_sender_whose_upn_starts_with_a_dollar(
    graphsim: tuple[str, SimClient],
) -> None:
    """`ALERT_SENDER=$svc...@contoso.com`: `/users/$svc...` is a system segment to Graph (400),
    so sendMail and the draft calls name the mailbox in the key form."""
    url, sim = graphsim
    async with graph_directory(url) as directory:
        await directory.send_mail(DOLLAR_SENDER, alert_message())
        draft = await directory.create_draft(DOLLAR_SENDER, alert_mime())
        assert await directory.find_draft(DOLLAR_SENDER, "<lg.1@contoso.com>") == draft
        assert await directory.send_draft(DOLLAR_SENDER, draft) is True
        other = await directory.create_draft(DOLLAR_SENDER, alert_mime("<lg.2@contoso.com>"))
        assert await directory.delete_draft(DOLLAR_SENDER, other) is True
    assert [m["from"] for m in sim.outbox()] == [DOLLAR_SENDER, DOLLAR_SENDER]


async def test_member_of_keeps_groups_only(graphsim: tuple[str, SimClient]) -> None:
    """Graph's memberOf lists directory roles and administrative units too: they are no
    group memberships (a role's id read as a group's was asked of Graph as a group)."""
    url, _ = graphsim
    async with graph_directory(url) as directory:
        found = await directory.member_of([EXTRA_USERS[0], EXTRA_USERS[1]])
    assert found[EXTRA_USERS[0]] == found[EXTRA_USERS[1]]
    assert found[EXTRA_USERS[0]]
    assert ROLE not in found[EXTRA_USERS[0]]
    assert UNIT not in found[EXTRA_USERS[0]]
