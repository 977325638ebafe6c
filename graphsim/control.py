"""/_sim control API: the test harness's (and the demo's) hands on the simulated tenant.

Not part of Graph and not authenticated. Admin actions are audited as a simulated admin user;
membership changes to on-prem synced groups are queued for the next sync cycle instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import GraphError, error_body
from .tokens import mint

if TYPE_CHECKING:
    from .simulator import Simulator

Obj = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> Obj:
    """The request's JSON object; an empty body is an empty one."""
    data = orjson.loads(await request.body() or b"{}")
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "Control requests take a JSON object.")
    return data


def control_routes(sim: Simulator) -> list[Route]:  # noqa: PLR0915 - one closure per route
    state = sim.state

    def wrap(fn: Callable[[Request, Obj], Awaitable[Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request)
                result = await fn(request, body)
            except GraphError as exc:
                return _json(error_body(exc.code, exc.message), exc.status)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                return _json(error_body("BadRequest", f"{type(exc).__name__}: {exc}"), 400)
            if isinstance(result, Response):
                return result
            return _json(result if result is not None else {"ok": True})

        return endpoint

    def change_member(op: str, gid: str, mid: str, body: Obj) -> Obj:
        """A synced group's membership changes on-prem (queued) unless forced; others at once."""
        if gid in state.synced_groups and not body.get("force"):
            state.queue_onprem_change(op, gid, mid)
            return {"queued": True}
        apply = state.add_member if op == "add" else state.remove_member
        apply(gid, mid, "admin", enforce_onprem=False)
        return {"queued": False}

    async def add_member(request: Request, body: Obj) -> Obj:
        mid = str(body.get("id") or body["userId"])
        return change_member("add", request.path_params["gid"], mid, body)

    async def remove_member(request: Request, body: Obj) -> Obj:
        path = request.path_params
        return change_member("remove", path["gid"], path["mid"], body)

    async def set_licenses(request: Request, body: Obj) -> Obj:
        gid = request.path_params["gid"]
        if "assignedLicenses" in body:
            current = [a["skuId"] for a in state.group(gid).get("assignedLicenses") or []]
            group = state.set_group_licenses(gid, list(body["assignedLicenses"]), current, "admin")
        else:
            group = state.set_group_licenses(
                gid,
                list(body.get("addLicenses") or []),
                list(body.get("removeLicenses") or []),
                "admin",
            )
        return {"id": group["id"], "assignedLicenses": group["assignedLicenses"]}

    async def delete_group(request: Request, body: Obj) -> Obj:
        permanent = body.get("permanent")
        state.delete_group(
            request.path_params["gid"],
            "admin",
            permanent=None if permanent is None else bool(permanent),
            change_type=body.get("changeType"),
        )
        return {"deleted": True}

    async def restore_group(request: Request, body: Obj) -> Obj:
        group = state.restore_group(request.path_params["gid"], "admin")
        return {"id": group["id"], "restored": True}

    async def delta_reset(request: Request, body: Obj) -> Obj:
        state.reset_delta_sync()
        return {"deltaReset": True}

    async def prepaid(request: Request, body: Obj) -> Obj:
        return state.set_prepaid_units(request.path_params["sku"], body)

    async def usage_location(request: Request, body: Obj) -> Obj:
        user = state.set_usage_location(request.path_params["uid"], body.get("usageLocation"))
        return {"id": user["id"], "usageLocation": user.get("usageLocation")}

    async def duplicate_proxy(request: Request, body: Obj) -> Obj:
        state.set_duplicate_proxy(request.path_params["uid"], bool(body.get("duplicate", True)))
        return {"duplicateProxyUsers": state.x.get("duplicateProxyUsers", [])}

    async def protected(request: Request, body: Obj) -> Obj:
        """The user joins (or leaves) a restricted management administrative unit: Graph
        answers the app's writes to it 403, whatever the app's roles."""
        state.set_protected(request.path_params["uid"], bool(body.get("protected", True)))
        return {"protectedUsers": state.x.get("protectedUsers", [])}

    async def sync(request: Request, body: Obj) -> Obj:
        return state.run_sync_cycle()

    async def onprem(request: Request, body: Obj) -> Obj:
        state.queue_onprem_change(str(body["op"]), str(body["groupId"]), str(body["userId"]))
        return {"pending": state.pending_onprem}

    async def clock(request: Request, body: Obj) -> Obj:
        if request.method == "POST":
            seconds = float(body.get("seconds", 0)) + 60 * float(body.get("minutes", 0))
            seconds += 3600 * float(body.get("hours", 0)) + 86400 * float(body.get("days", 0))
            sim.advance(seconds)
        return {"now": state.clock.now().isoformat(), "frozen": state.clock.frozen}

    async def faults(request: Request, body: Obj) -> Obj:
        if request.method == "PUT":
            sim.faults.configure(body)
        return sim.faults.describe()

    async def remove_subscription(request: Request, body: Obj) -> Obj:
        return sim.notifier.remove_subscription(request.path_params["sid"])

    async def throttle(request: Request, body: Obj) -> Obj:
        if request.method == "PUT":
            sim.throttle.configure(body)
        return sim.throttle.describe()

    async def notifications(request: Request, body: Obj) -> Obj:
        if request.method == "PUT":
            sim.notifier.configure(body)
        return sim.notifier.describe()

    async def outbox(request: Request, body: Obj) -> Any:
        if request.method == "DELETE":
            state.outbox.clear()
        return {"value": state.outbox}

    async def counters(request: Request, body: Obj) -> Any:
        if request.method == "DELETE":
            state.counters.clear()
        return state.counters

    async def deliveries(request: Request, body: Obj) -> Any:
        return {"value": sim.notifier.log}

    async def drain(request: Request, body: Obj) -> Any:
        return await sim.drain(
            timeout=float(body.get("timeout", 30)), settle=bool(body.get("settle"))
        )

    async def status(request: Request, body: Obj) -> Any:
        return sim.status() | {
            "subscriptions": len(state.subscriptions),
            "pendingOnPremChanges": len(state.pending_onprem),
            "changeLogSeq": state.seq,
        }

    async def reset(request: Request, body: Obj) -> Any:
        sim.reset()
        return {"reset": True}

    async def token(request: Request, body: Obj) -> Any:
        """Issue an access token this graphsim accepts (a JWT signed with its --token secret):
        body `{"claims": {"appid": ..., "roles": [...]}, "lifetimeSeconds": 3600}`."""
        if sim.token is None:
            raise GraphError(400, "BadRequest", "graphsim runs without --token: any token works.")
        claims = body.get("claims") or {}
        if not isinstance(claims, dict):
            raise GraphError(400, "BadRequest", "claims must be a JSON object.")
        lifetime = float(body.get("lifetimeSeconds", 3600))
        return {"access_token": mint(sim.token, claims, lifetime), "expires_in": int(lifetime)}

    p = "/_sim"
    return [
        Route(f"{p}/groups/{{gid}}/members", wrap(add_member), methods=["POST"]),
        Route(f"{p}/groups/{{gid}}/members/{{mid}}", wrap(remove_member), methods=["DELETE"]),
        Route(f"{p}/groups/{{gid}}/licenses", wrap(set_licenses), methods=["PUT", "POST"]),
        Route(f"{p}/groups/{{gid}}", wrap(delete_group), methods=["DELETE"]),
        Route(f"{p}/groups/{{gid}}/restore", wrap(restore_group), methods=["POST"]),
        Route(f"{p}/delta/reset", wrap(delta_reset), methods=["POST"]),
        Route(f"{p}/skus/{{sku}}/prepaidUnits", wrap(prepaid), methods=["PUT"]),
        Route(f"{p}/users/{{uid}}/usageLocation", wrap(usage_location), methods=["PUT"]),
        Route(f"{p}/users/{{uid}}/duplicateProxy", wrap(duplicate_proxy), methods=["PUT"]),
        Route(f"{p}/users/{{uid}}/protected", wrap(protected), methods=["PUT"]),
        Route(f"{p}/sync", wrap(sync), methods=["POST"]),
        Route(f"{p}/onprem", wrap(onprem), methods=["POST"]),
        Route(f"{p}/clock", wrap(clock), methods=["GET", "POST"]),
        Route(f"{p}/faults", wrap(faults), methods=["GET", "PUT"]),
        Route(f"{p}/throttle", wrap(throttle), methods=["GET", "PUT"]),
        Route(f"{p}/subscriptions/{{sid}}/remove", wrap(remove_subscription), methods=["POST"]),
        Route(f"{p}/notifications", wrap(notifications), methods=["GET", "PUT"]),
        Route(f"{p}/outbox", wrap(outbox), methods=["GET", "DELETE"]),
        Route(f"{p}/counters", wrap(counters), methods=["GET", "DELETE"]),
        Route(f"{p}/deliveries", wrap(deliveries), methods=["GET"]),
        Route(f"{p}/drain", wrap(drain), methods=["POST"]),
        Route(f"{p}/status", wrap(status), methods=["GET"]),
        Route(f"{p}/reset", wrap(reset), methods=["POST"]),
        Route(f"{p}/token", wrap(token), methods=["POST"]),
    ]
