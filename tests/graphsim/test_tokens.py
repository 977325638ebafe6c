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
        claims = {"appid": "app-2", "roles": ["User.Read.All"]}
        issued = (await c.post("/_sim/token", json={"claims": claims})).json()
        decoded = jwt.decode(
            issued["access_token"],
            SECRET,
            algorithms=["HS256"],
            audience="https://graph.microsoft.com",
        )
        assert decoded["roles"] == ["User.Read.All"]
        assert decoded["appid"] == "app-2"
        r = await c.get(
            "/v1.0/organization", headers={"Authorization": f"Bearer {issued['access_token']}"}
        )
        assert r.status_code == 200
    await app.state.sim.close()
