"""graphsim's JWT access tokens (`--token SECRET`): signed, expiring, for Graph's audience.

Tokens here are minted with PyJWT, independently of graphsim's own `mint`."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from graphsim.app import create_app

from .conftest import make_tenant

pytestmark = pytest.mark.anyio
SECRET = "graphsim-test-signing-secret-0123456789abcdef"  # loopback test secret


def token(secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    body = {"aud": "https://graph.microsoft.com", "exp": now + 60, "appid": "app-1"} | claims
    return jwt.encode(body, secret, algorithm="HS256")


async def test_a_signed_unexpired_graph_token_is_accepted_and_others_are_not() -> None:
    app = create_app(make_tenant(), token=SECRET)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t/v1.0"
    ) as c:

        async def status(bearer: str) -> tuple[int, str]:
            r = await c.get("/organization", headers={"Authorization": f"Bearer {bearer}"})
            return r.status_code, r.json()["error"]["message"] if r.status_code != 200 else ""

        assert await status(SECRET) == (200, "")  # the static form still works
        assert await status(token()) == (200, "")
        assert await status(token(exp=int(time.time()) - 1)) == (
            401,
            "Lifetime validation failed, the token is expired.",
        )
        assert await status(token("another-secret-of-enough-length-0123456")) == (
            401,
            "Access token validation failure.",
        )
        assert await status(token(aud="https://management.azure.com")) == (
            401,
            "Access token validation failure. Invalid audience.",
        )
    await app.state.sim.close()


async def test_sim_token_issues_a_token_graphsim_accepts_with_the_claims_asked_for() -> None:
    app = create_app(make_tenant(), token=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        claims = {"appid": "app-2", "roles": ["Organization.Read.All"]}
        issued = (await c.post("/_sim/token", json={"claims": claims})).json()
        decoded = jwt.decode(
            issued["access_token"],
            SECRET,
            algorithms=["HS256"],
            audience="https://graph.microsoft.com",
        )
        assert decoded["roles"] == ["Organization.Read.All"]
        assert decoded["appid"] == "app-2"
        r = await c.get(
            "/v1.0/organization", headers={"Authorization": f"Bearer {issued['access_token']}"}
        )
        assert r.status_code == 200
    await app.state.sim.close()


async def test_a_token_with_roles_is_held_to_them_also_inside_batch() -> None:
    """Graph answers 403 Authorization_RequestDenied to a call no app role of the token allows
    (https://learn.microsoft.com/graph/api/directoryaudit-list: AuditLog.Read.All)."""
    app = create_app(make_tenant(), token=SECRET)
    limited = token(roles=["User.Read.All"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t/v1.0",
        headers={"Authorization": f"Bearer {limited}"},
    ) as c:
        assert (await c.get("/users?$top=1")).status_code == 200
        audits = await c.get("/auditLogs/directoryAudits?$top=1")
        assert audits.status_code == 403
        assert audits.json()["error"]["code"] == "Authorization_RequestDenied"
        assert (await c.get("/groups?$top=1")).status_code == 403
        batch = await c.post(
            "/$batch",
            json={
                "requests": [
                    {"id": "1", "method": "GET", "url": "/users?$top=1"},
                    {"id": "2", "method": "GET", "url": "/subscribedSkus"},
                ]
            },
        )
        statuses = {r["id"]: r["status"] for r in batch.json()["responses"]}
        assert statuses == {"1": 200, "2": 403}
        unrestricted = await c.get(
            "/auditLogs/directoryAudits?$top=1", headers={"Authorization": f"Bearer {SECRET}"}
        )
        assert unrestricted.status_code == 200  # a token without a roles claim is not limited
    await app.state.sim.close()
