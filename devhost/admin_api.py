"""The host's admin API: status, the function list and `POST /admin/functions/{name}`, which
runs a timer or queue function now (the master key only)."""

from __future__ import annotations

import json

from azure.functions.queue import QueueMessage as FuncQueueMessage
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.http_triggers import HttpTriggers
from devhost.index import HTTP, TIMER, FunctionSpec
from devhost.invocation import Invocation, now
from devhost.timer_triggers import TimerTriggers


class AdminApi(HttpTriggers, TimerTriggers):
    """The admin routes (mixed into `DevHost`)."""

    async def _admin_status(self, request: Request) -> Response:
        if not self._authorized(request, "ADMIN"):
            return Response(status_code=401)
        return JSONResponse({"state": "Running", "functions": sorted(self.functions)})

    async def _admin_list(self, request: Request) -> Response:
        if not self._authorized(request, "ADMIN"):
            return Response(status_code=401)
        return JSONResponse(
            [
                {"name": s.name, "trigger": s.trigger, "config": s.binding_json}
                for s in self.functions.values()
            ]
        )

    async def _admin_invoke(self, request: Request) -> Response:
        """`POST /admin/functions/{name}` with `{"input": "..."}`: run a non-HTTP function now."""
        if not self._authorized(request, "ADMIN"):
            return Response(status_code=401)
        spec = self.functions.get(request.path_params["name"])
        if spec is None:
            return Response(status_code=404)
        if spec.trigger == HTTP:
            return JSONResponse({"error": "call HTTP functions at their route"}, status_code=400)
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return JSONResponse({"error": 'body must be JSON like {"input": ""}'}, status_code=400)
        text = str(payload.get("input") or "") if isinstance(payload, dict) else ""
        if spec.trigger == TIMER:
            record = self._begin(spec, past_due=False)
            self._spawn(self._run_timer(spec, record))
        else:
            record = self._begin(spec, dequeue_count=1)
            self._spawn(self._run_direct_queue(spec, text, record))
        return Response(status_code=202)

    async def _run_direct_queue(self, spec: FunctionSpec, text: str, record: Invocation) -> None:
        message = FuncQueueMessage(  # type: ignore[no-untyped-call]
            id=record.id, body=text.encode("utf-8"), dequeue_count=1, insertion_time=now()
        )
        try:
            await self._call(spec, message, record)
        except Exception as error:
            self._end(record, error)
        else:
            self._end(record)
