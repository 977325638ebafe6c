"""`preflight --principal-id`'s storage roles, read from Azure Resource Manager ("Role
Assignments - List For Scope" with `$filter=principalId eq`, which lists the principal's
assignments at, above and below the scope: learn.microsoft.com/rest/api/authorization/
role-assignments/list-for-scope), against a loopback stand-in for ARM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.adapters.arm_roles import role_definitions_covering, storage_account_scope
from shared.ports.directory import DirectoryError
from tests.credentials import MintingCredential
from tests.loopback import QuietHandler, serving

PRINCIPAL = "8e881353-1735-45af-af21-ee1344582a4d"
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
ACCOUNT = storage_account_scope(SUBSCRIPTION, "rg-license-guard", "stlicenseguard")
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"


class Arm:
    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.content_type = "application/json"


@pytest.fixture
def arm() -> Iterator[tuple[Arm, str]]:
    fake = Arm()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server calls it by this name
            self.send_response(fake.status)
            self.send_header("Content-Type", fake.content_type)
            self.send_header("Content-Length", str(len(fake.body)))
            self.end_headers()
            self.wfile.write(fake.body)

    with serving(Handler) as url:
        yield fake, url


def covering(url: str) -> set[str]:
    credential = MintingCredential("arm-secret-0123456789abcdef0123456789")
    return asyncio.run(role_definitions_covering(url, ACCOUNT, PRINCIPAL, credential))


def assignment(role: str, scope: str) -> dict[str, Any]:
    return {
        "properties": {
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{role}",
            "principalId": PRINCIPAL,
            "scope": scope,
        }
    }


def test_an_answer_that_is_not_json_is_an_error_not_a_crash(arm: tuple[Arm, str]) -> None:
    """A proxy's or a wrong ARM_BASE_URL's HTML page: preflight reports it on the storage
    roles line; it raised JSONDecodeError, a traceback out of the command."""
    fake, url = arm
    fake.status, fake.content_type = 404, "text/html"
    fake.body = b"<html><body>Not Found</body></html>"

    with pytest.raises(DirectoryError) as raised:
        covering(url)

    assert raised.value.status == 404


def test_roles_held_on_a_management_group_or_the_root_cover_the_account(
    arm: tuple[Arm, str],
) -> None:
    """Listed for the account, an assignment that is not below it is at or above it: a
    management group's (or the tenant root's) covers the account as a subscription's does."""
    fake, url = arm
    fake.body = json.dumps(
        {
            "value": [
                assignment(BLOB_OWNER, "/providers/Microsoft.Management/managementGroups/corp"),
                assignment(QUEUE_CONTRIBUTOR, "/"),
                assignment("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", f"{ACCOUNT}/tableServices/x"),
            ]
        }
    ).encode()

    assert covering(url) == {BLOB_OWNER, QUEUE_CONTRIBUTOR}
