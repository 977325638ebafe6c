"""graphsim keeps an idle connection open longer than clients keep one in their pool.

With uvicorn's default (5 s) equal to httpx's pool expiry (5 s), a client could send on a
connection at the moment the server closed it and read "connection reset by peer": a
reliability bench run in CI failed so, polling graphsim's status between steps."""

from __future__ import annotations

import time

import httpx

from graphsim.server import KEEP_ALIVE_SECONDS, serve_in_thread
from graphsim.synthetic import generate_tenant

HTTPX_POOL_EXPIRY = httpx.Limits().keepalive_expiry or 0.0


def client_port(response: httpx.Response) -> int:
    """The local port of the connection the response came on."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_an_idle_connection_outlives_a_clients_pool_expiry() -> None:
    assert KEEP_ALIVE_SECONDS > 2 * HTTPX_POOL_EXPIRY
    tenant = generate_tenant(users=5, groups=2, skus=2, seed=1)
    with (
        serve_in_thread(tenant) as url,
        httpx.Client(limits=httpx.Limits(keepalive_expiry=KEEP_ALIVE_SECONDS)) as client,
    ):
        status = url.replace("/v1.0", "/_sim/status")
        first = client.get(status)
        first_port = client_port(first)
        time.sleep(HTTPX_POOL_EXPIRY + 1)  # idle past uvicorn's default keep-alive
        second = client.get(status)
        second_port = client_port(second)

    assert first.status_code == second.status_code == 200
    assert second_port == first_port  # the same connection, still open
