"""ASGI app factory: Graph v1.0 under /v1.0 (bearer auth, faults, throttling) and the
simulator's control API under /_sim (no auth: a dev/test tool bound to loopback).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import tokens
from .clock import SimClock
from .control import control_routes
from .errors import error_body
from .faults import SimulatedResetError
from .simulator import Simulator
from .wire import Req

Obj = dict[str, Any]
JSON = "application/json"
API_PREFIX = "/v1.0"


class ResetResponse(Response):
    """Sends the response head, then fails: the client sees the connection drop."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", JSON.encode()), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"value": [', "more_body": True})
        raise SimulatedResetError("graphsim fault: connection reset")


def _unauthorized(code: str, message: str, client_request_id: str | None) -> Response:
    return Response(
        orjson.dumps(error_body(code, message, client_request_id=client_request_id)),
        status_code=401,
        media_type=JSON,
        headers={"WWW-Authenticate": 'Bearer realm="graphsim"'},
    )


def make_graph_endpoint(sim: Simulator) -> Any:
    async def graph_endpoint(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        client_id = headers.get("client-request-id")
        auth = headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            sim.state.count("401", 401)
            return _unauthorized("InvalidAuthenticationToken", "Access token is empty.", client_id)
        refused = tokens.rejection(presented, sim.token)
        if refused is not None:
            sim.state.count("401", 401)
            return _unauthorized("InvalidAuthenticationToken", refused, client_id)
        path = request.url.path[len(API_PREFIX) :] or "/"
        base_url = f"{request.url.scheme}://{request.url.netloc}{API_PREFIX}"
        req = Req(
            method=request.method.upper(),
            path=path,
            params=dict(request.query_params),
            headers=headers,
            body=await request.body(),
            base_url=base_url,
            app_id=tokens.client_app_id(presented) or tokens.app_id_for(presented),
            roles=tokens.roles_of(presented),
        )
        resp = await sim.handle(req)
        if resp.status == -1:
            return ResetResponse()
        request_id = str(uuid.uuid4())
        out_headers = {"request-id": request_id, "client-request-id": client_id or request_id}
        out_headers.update(resp.headers)
        body = resp.encoded()
        return Response(
            body,
            status_code=resp.status,
            headers=out_headers,
            media_type=JSON if body else None,
        )

    return graph_endpoint


async def invalid_version(request: Request) -> Response:
    """Any path outside `/v1.0` (a base URL without the version): Graph's 400 "Invalid
    version.", as JSON like its other errors."""
    body = error_body(
        "BadRequest", "Invalid version.", client_request_id=request.headers.get("client-request-id")
    )
    return Response(orjson.dumps(body), status_code=400, media_type=JSON)


def create_app(
    tenant: Obj,
    *,
    token: str | None = None,
    seed: int = 0,
    clock: SimClock | None = None,
    tenant_factory: Callable[[], Obj] | None = None,
) -> Starlette:
    """Build the ASGI app; the Simulator is at `app.state.sim` (tests can drive it directly).

    `tenant_factory` rebuilds the tenant for /_sim/reset; without it a serialised copy of
    `tenant` is kept (fine for small tenants, ~1 GB for a 100k-user synthetic one).
    """
    sim = Simulator(tenant, token=token, seed=seed, clock=clock, tenant_factory=tenant_factory)
    endpoint = make_graph_endpoint(sim)
    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    routes = [
        *control_routes(sim),
        Route(API_PREFIX + "/{rest:path}", endpoint, methods=methods),
        Route("/{rest:path}", invalid_version, methods=methods),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app
