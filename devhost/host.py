"""DevHost: runs a v2-model function app locally with the Functions host's trigger semantics.

One background thread runs an asyncio loop holding a uvicorn server (HTTP triggers and the
admin API), one poller per queue-triggered function (Azurite or any storage connection string)
and one scheduler per timer. Sync functions run in a thread pool, async ones on the loop, so a
function may call back into the same host while it is in flight.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections import ChainMap, Counter
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import azure.functions as func
import uvicorn
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.functions.timer import TimerRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from devhost.config import DevHostError, HostOptions, MissingSettingError, read_host_json
from devhost.index import ALL_METHODS, HTTP, QUEUE, TIMER, FunctionSpec, QueueOutput, index_app

if TYPE_CHECKING:
    # imported by the first queue client (in a worker thread, see `_poll`): the HTTP routes
    # answer first, as on a cold Functions host, which does not load the Storage SDK into the
    # Python worker
    from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger("devhost")
_T = TypeVar("_T")

# The host keeps a received message invisible this long while the function runs (and leaves it
# so after a crash); locally nothing renews it, so it must outlast any sensible invocation.
RECEIVE_VISIBILITY_SECONDS = 600
# Documented: maxPollingInterval defaults to 1 minute, but 2 seconds when running locally.
LOCAL_MAX_POLLING_INTERVAL = timedelta(seconds=2)
_PAST_DUE_TOLERANCE = timedelta(seconds=1)


@dataclass
class Invocation:
    """One function run, as the invocation log records it."""

    id: str
    function: str
    trigger: str  # "http" | "queue" | "timer"
    started: datetime
    ended: datetime | None = None
    outcome: str = "running"  # "running" | "succeeded" | "failed"
    error: str | None = None
    dequeue_count: int | None = None
    past_due: bool | None = None
    status_code: int | None = None
    poisoned: bool = False

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended is None else self.ended - self.started


class _Out(func.Out[Any]):
    """An output binding value holder (`out.set(...)`), like the worker's."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class InvocationContext(func.Context):
    """The `context` the Functions host passes a handler: the invocation id and function name."""

    def __init__(self, function_name: str, invocation_id: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(Path.cwd())

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def _payloads(value: Any, where: str) -> list[bytes]:
    """What a queue output binding accepts: str, bytes, a QueueMessage or a list of those."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.encode("utf-8")]
    if isinstance(value, bytes | bytearray):
        return [bytes(value)]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, list | tuple):
        return [p for item in value for p in _payloads(item, where)]
    raise TypeError(
        f"{where}: a queue output takes str, bytes or a list of them, not {type(value)}"
    )


def _to_response(result: Any, where: str) -> Response:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            mimetype = result.mimetype or "text/plain"
            textual = mimetype.startswith("text/") or mimetype.endswith("json")
            charset = f"; charset={result.charset}" if textual and result.charset else ""
            headers["Content-Type"] = mimetype + charset
        return Response(result.get_body(), status_code=result.status_code, headers=headers)
    if isinstance(result, str | bytes):
        return Response(result, status_code=200, media_type="text/plain")
    raise TypeError(f"{where} returned {type(result).__name__}; return a func.HttpResponse")


class DevHost:
    """Runs the function app's HTTP, queue and timer functions on loopback; see the module doc."""

    def __init__(
        self,
        app: Any,
        settings: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_key: str | None = None,
        master_key: str | None = None,
        function_keys: Mapping[str, str] | None = None,
        poll_interval: float = 0.2,
        host_json: Mapping[str, Any] | None = None,
        host_json_path: str | Path | None = None,
        shutdown_grace: float = 10.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.settings: dict[str, str] = dict(settings or {})
        self._lookup: Mapping[str, str] = ChainMap(self.settings, os.environ)
        document = (
            dict(host_json)
            if host_json is not None
            else read_host_json(host_json_path or Path.cwd() / "host.json")
        )
        self.options = HostOptions.from_json(document)
        specs = index_app(app, self._lookup, self.options.route_prefix)
        self.functions: dict[str, FunctionSpec] = {s.name: s for s in specs}
        self._connections: dict[str, str] = {}
        for spec in specs:
            if spec.trigger == QUEUE:
                self._connection_string(spec.connection, f"function {spec.name!r} trigger")
            for out in spec.outputs:
                self._connection_string(out.connection, f"function {spec.name!r} output")
        self.host = host
        self.port = port
        self.function_key = function_key or secrets.token_urlsafe(24)
        self.master_key = master_key or secrets.token_urlsafe(32)
        # Function-level keys (Azure: Microsoft.Web/sites/functions/keys): valid for that
        # function only, next to the host's function key.
        self.function_keys: dict[str, str] = dict(function_keys or {})
        for name in self.function_keys:
            if name not in self.functions:
                raise ValueError(f"function_keys: {name!r} is not a function of this app")
        self.poll_interval = poll_interval
        q = self.options.queues
        cap = q.max_polling_interval if q.max_polling_interval_set else LOCAL_MAX_POLLING_INTERVAL
        self.max_poll_interval = max(cap.total_seconds(), poll_interval)
        self.shutdown_grace = shutdown_grace
        self.threads = self._thread_count()

        self._state = threading.Lock()
        self._invocations: list[Invocation] = []
        self._counters: dict[str, Counter[str]] = {name: Counter() for name in self.functions}
        self._started_count = 0
        self._ended_count = 0
        self._retry_due = 0.0  # monotonic time when the last failed message is visible again
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._wake: dict[tuple[str, str], asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._created_queues: set[tuple[str, str]] = set()
        self._saved_env: dict[str, str | None] = {}
        self._handler: logging.Handler | None = None
        self._saved_log: tuple[int, bool] = (logging.NOTSET, True)

    # ---------------------------------------------------------------- settings / storage
    def _thread_count(self) -> int:
        configured = self._lookup.get("PYTHON_THREADPOOL_THREAD_COUNT")
        if configured:
            return max(1, int(configured))
        return min(32, (os.cpu_count() or 1) + 4)

    def _connection_string(self, setting: str, where: str) -> str:
        if setting not in self._connections:
            value = self._lookup.get(setting)
            if value is None:
                if any(k.startswith(f"{setting}__") for k in self._lookup):
                    raise DevHostError(
                        f"{where}: connection {setting!r} is identity-based ({setting}__*); "
                        "devhost needs a connection string (e.g. Azurite's)"
                    )
                raise MissingSettingError(setting, f"{where} connection")
            self._connections[setting] = value
        return self._connections[setting]

    def _client(self, connection: str, queue: str) -> QueueClient:
        from azure.storage.queue import QueueClient  # noqa: PLC0415 - see the imports

        return QueueClient.from_connection_string(self._connections[connection], queue)

    def _encode(self, payload: bytes) -> str:
        if self.options.queues.message_encoding == "base64":
            return base64.b64encode(payload).decode("ascii")
        return payload.decode("utf-8")

    def _decode(self, content: str) -> bytes:
        if self.options.queues.message_encoding == "base64":
            try:
                return base64.b64decode(content.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise ValueError(
                    "the message is not Base64 (host.json queues.messageEncoding is base64); "
                    "send it with TextBase64EncodePolicy"
                ) from None
        return content.encode("utf-8")

    # ---------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        if not self._ready.is_set():
            raise RuntimeError("the devhost is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("the devhost is already started")
        self._export_settings()
        self._attach_log_handler()
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="devhost-fn")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="devhost-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._startup_error is not None:
            error = self._startup_error
            self.stop()
            if error is not None:
                raise DevHostError(f"devhost failed to start: {_error_text(error)}") from error
            raise DevHostError(f"devhost did not start within {timeout:.0f} s")
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is not None:
            if loop is not None and self._stop_event is not None and thread.is_alive():
                loop.call_soon_threadsafe(self._stop_event.set)
            thread.join(self.shutdown_grace + 15)
        self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._restore_settings()
        self._detach_log_handler()
        self._ready.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _export_settings(self) -> None:
        self._saved_env = {k: os.environ.get(k) for k in self.settings}
        os.environ.update(self.settings)

    def _restore_settings(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _attach_log_handler(self) -> None:
        """Plain invocation lines on stderr, once each, whatever the root logger is set to."""
        if log.handlers:  # the embedding program configured "devhost" itself
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s"))
        self._saved_log = (log.level, log.propagate)
        log.addHandler(handler)
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)
        log.propagate = False
        self._handler = handler

    def _detach_log_handler(self) -> None:
        if self._handler is not None:
            log.removeHandler(self._handler)
            log.setLevel(self._saved_log[0])
            log.propagate = self._saved_log[1]
            self._handler = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as error:  # reported to start(); the loop thread must not die silently
            if not self._ready.is_set():
                self._startup_error = error
                self._ready.set()
            else:
                log.exception("devhost loop failed")
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._wake = {}
        config = uvicorn.Config(
            self._asgi_app(),
            host=self.host,
            port=self.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(self.shutdown_grace)),
        )
        server = uvicorn.Server(config)
        serve = asyncio.create_task(server.serve())
        while not server.started:
            if serve.done():
                serve.result()
                raise DevHostError("the HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        background: list[asyncio.Task[None]] = []
        for spec in self.functions.values():
            if spec.trigger == QUEUE:
                key = (spec.connection, spec.queue_name)
                self._wake.setdefault(key, asyncio.Event())
                background.append(asyncio.create_task(self._poll(spec)))
            elif spec.trigger == TIMER:
                # runOnStartup: begun before start() returns, so wait_idle() covers it
                startup = self._begin(spec, past_due=False) if spec.run_on_startup else None
                background.append(asyncio.create_task(self._timer(spec, startup)))
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            server.should_exit = True
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                _, still = await asyncio.wait(pending, timeout=self.shutdown_grace)
                for task in still:
                    task.cancel()
            await serve

    # ---------------------------------------------------------------- bookkeeping
    def _begin(self, spec: FunctionSpec, **details: Any) -> Invocation:
        record = Invocation(uuid.uuid4().hex, spec.name, spec.trigger_kind, _now(), **details)
        with self._state:
            self._started_count += 1
            self._invocations.append(record)
        extra = "".join(f", {k}={v}" for k, v in details.items() if v is not None)
        log.info(
            "Executing '%s' (trigger=%s, id=%s%s)", spec.name, record.trigger, record.id, extra
        )
        return record

    def _end(self, record: Invocation, error: BaseException | None = None, **extra: Any) -> None:
        with self._state:
            record.ended = _now()
            record.outcome = "failed" if error is not None else "succeeded"
            record.error = None if error is None else _error_text(error)
            for key, value in extra.items():
                setattr(record, key, value)
            counter = self._counters[record.function]
            counter[record.outcome] += 1
            if record.poisoned:
                counter["poisoned"] += 1
            self._ended_count += 1
        ms = (record.ended - record.started).total_seconds() * 1000
        if error is None:
            log.info("Executed '%s' (Succeeded, id=%s, %.0f ms)", record.function, record.id, ms)
        else:
            poison = " -> moved to poison queue" if record.poisoned else ""
            log.info(
                "Executed '%s' (Failed, id=%s, %.0f ms): %s%s",
                record.function,
                record.id,
                ms,
                record.error,
                poison,
            )

    @property
    def invocations(self) -> list[Invocation]:
        """A copy of the invocation log, oldest first."""
        with self._state:
            return list(self._invocations)

    def invocations_of(self, name: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == name]

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Per function: succeeded, failed and poisoned counts."""
        with self._state:
            return {
                name: {k: c[k] for k in ("succeeded", "failed", "poisoned")}
                for name, c in self._counters.items()
            }

    @property
    def in_flight(self) -> int:
        with self._state:
            return self._started_count - self._ended_count

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---------------------------------------------------------------- invoking
    async def _call(self, spec: FunctionSpec, trigger_value: Any, record: Invocation) -> Any:
        """Run the user function; on success flush its queue outputs. Raises on failure."""
        outs = {o.arg_name: _Out() for o in spec.outputs if o.arg_name != "$return"}
        kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if spec.accepts_context:
            kwargs["context"] = InvocationContext(spec.name, record.id)
        if spec.is_async:
            result = await spec.func(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._executor, functools.partial(spec.func, **kwargs)
            )
        for out in spec.outputs:
            value = result if out.arg_name == "$return" else outs[out.arg_name].get()
            await self._send(out, _payloads(value, f"{spec.name} output {out.arg_name!r}"))
        return result

    async def _send(self, out: QueueOutput, payloads: list[bytes]) -> None:
        if not payloads:
            return
        messages = [self._encode(p) for p in payloads]
        key = (out.connection, out.queue_name)

        def send() -> None:
            client = self._client(out.connection, out.queue_name)
            if key not in self._created_queues:
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                self._created_queues.add(key)
            for message in messages:
                client.send_message(message)

        await asyncio.to_thread(send)
        wake = self._wake.get(key)  # like the host's SharedQueueWatcher: poll it now
        if wake is not None:
            wake.set()

    # ---------------------------------------------------------------- HTTP
    def _asgi_app(self) -> Starlette:
        return Starlette(
            routes=[
                StarletteRoute("/admin/host/status", self._admin_status, methods=["GET"]),
                StarletteRoute("/admin/functions/{name}", self._admin_invoke, methods=["POST"]),
                StarletteRoute("/admin/functions", self._admin_list, methods=["GET"]),
                StarletteRoute("/{path:path}", self._http, methods=list(ALL_METHODS)),
            ]
        )

    def _presented_key(self, request: Request) -> str:
        return request.headers.get("x-functions-key") or request.query_params.get("code") or ""

    def _authorized(self, request: Request, level: str, function: str | None = None) -> bool:
        if level == "ANONYMOUS":
            return True
        key = self._presented_key(request).encode()
        master = hmac.compare_digest(key, self.master_key.encode())
        if level == "ADMIN":
            return master
        own = self.function_keys.get(function or "")
        if own is not None and hmac.compare_digest(key, own.encode()):
            return True
        return master or hmac.compare_digest(key, self.function_key.encode())

    def _http_candidates(self, path: str) -> list[tuple[FunctionSpec, dict[str, str]]]:
        found = []
        for spec in self.functions.values():
            if spec.route is None:
                continue
            params = spec.route.match(path)
            if params is not None:
                found.append((spec, params))
        found.sort(key=lambda item: -item[0].route.literal_segments if item[0].route else 0)
        return found

    async def _http(self, request: Request) -> Response:
        method = request.method.upper()
        match = next(
            ((s, p) for s, p in self._http_candidates(request.url.path) if method in s.methods),
            None,
        )
        if match is None:  # the host answers 404 for an unknown route or a method it doesn't map
            return Response(status_code=404)
        spec, route_params = match
        if not self._authorized(request, spec.auth_level, spec.name):
            return Response(status_code=401)
        body = await request.body()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        http_request = func.HttpRequest(
            method=method,
            url=str(request.url),
            headers=headers,
            params=dict(request.query_params),
            route_params=route_params,
            body=body,
        )
        record = self._begin(spec)
        try:
            result = await self._call(spec, http_request, record)
            response = _to_response(result, f"function {spec.name!r}")
        except Exception as error:
            self._end(record, error, status_code=500)
            return Response(status_code=500)
        self._end(record, status_code=response.status_code)
        return response

    def url_for(self, function_name: str, **route_params: str) -> str:
        """The full URL of an HTTP function (route values filled in, `?code=` when keyed)."""
        spec = self.functions.get(function_name)
        if spec is None or spec.route is None:
            raise KeyError(f"{function_name!r} is not an HTTP function of this app")
        url = self.base_url + spec.route.fill(self.options.route_prefix, route_params)
        if spec.auth_level == "ANONYMOUS":
            return url
        key = self.master_key if spec.auth_level == "ADMIN" else self.function_key
        return f"{url}?code={key}"

    def _display_url(self, spec: FunctionSpec) -> str:
        template = spec.route.template.strip("/") if spec.route else ""
        path = "/".join(p for p in (self.options.route_prefix, template) if p)
        key = {"ANONYMOUS": None, "ADMIN": self.master_key}.get(spec.auth_level, self.function_key)
        return f"{self.base_url}/{path}" + (f"?code={key}" if key else "")

    # ---------------------------------------------------------------- admin API
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
            id=record.id, body=text.encode("utf-8"), dequeue_count=1, insertion_time=_now()
        )
        try:
            await self._call(spec, message, record)
        except Exception as error:
            self._end(record, error)
        else:
            self._end(record)

    # ---------------------------------------------------------------- timers
    async def _run_timer(self, spec: FunctionSpec, record: Invocation) -> Invocation:
        try:
            await self._call(spec, TimerRequest(past_due=bool(record.past_due)), record)
        except Exception as error:
            self._end(record, error)
        else:
            self._end(record)
        return record

    async def _fire(self, spec: FunctionSpec, past_due: bool) -> Invocation:
        return await self._run_timer(spec, self._begin(spec, past_due=past_due))

    async def _timer(self, spec: FunctionSpec, startup: Invocation | None) -> None:
        schedule = spec.schedule
        if schedule is None:  # pragma: no cover - index_app always sets it for timers
            return
        if startup is not None:
            await self._run_timer(spec, startup)
        last = _now()
        while True:
            due = schedule.next_after(last)
            delay = (due - _now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            started = _now()
            past_due = started - due > _PAST_DUE_TOLERANCE
            await self._fire(spec, past_due)  # awaited: a timer never overlaps itself
            last = started if past_due else due  # missed occurrences collapse into one late run

    def fire_timer(self, name: str, timeout: float = 60.0) -> Invocation:
        """Run a timer function now (like the admin API) and return its finished invocation."""
        spec = self.functions.get(name)
        if spec is None or spec.trigger != TIMER:
            raise KeyError(f"{name!r} is not a timer function of this app")
        return self._on_loop(self._fire(spec, past_due=False), timeout)

    def _on_loop(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        loop = self._loop
        if loop is None or not self._ready.is_set():
            coro.close()
            raise RuntimeError("the devhost is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # ---------------------------------------------------------------- queues
    async def _poll(self, spec: FunctionSpec) -> None:
        client = await asyncio.to_thread(self._client, spec.connection, spec.queue_name)
        wake = self._wake[(spec.connection, spec.queue_name)]
        batch = self.options.queues.batch_size
        running: set[asyncio.Task[None]] = set()
        interval = self.poll_interval
        warned = False
        while True:
            free = batch - len(running)
            if free <= 0:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            wake.clear()
            try:
                messages = await asyncio.to_thread(self._receive, client, free)
                warned = False
            except ResourceNotFoundError:
                messages = []  # like the host: a missing queue is polled until it exists
            except AzureError as error:
                if not warned:
                    log.warning("polling %r failed: %s", spec.queue_name, error)
                    warned = True
                messages = []
            for message in messages:
                task = self._spawn(self._process(spec, client, message))
                running.add(task)
                task.add_done_callback(running.discard)
            if messages:
                interval = self.poll_interval
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
                interval = self.poll_interval
                continue
            interval = min(interval * 2, self.max_poll_interval)

    @staticmethod
    def _receive(client: QueueClient, count: int) -> list[QueueMessage]:
        return list(
            client.receive_messages(
                messages_per_page=min(count, 32),
                max_messages=count,
                visibility_timeout=RECEIVE_VISIBILITY_SECONDS,
            )
        )

    async def _process(
        self, spec: FunctionSpec, client: QueueClient, message: QueueMessage
    ) -> None:
        q = self.options.queues
        count = int(message.dequeue_count or 1)
        record = self._begin(spec, dequeue_count=count)
        try:
            if count > q.max_dequeue_count:  # e.g. left invisible by a crash mid-run
                raise RuntimeError(f"message has reached MaxDequeueCount of {q.max_dequeue_count}")
            body = self._decode(str(message.content))
            trigger = FuncQueueMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=body,
                dequeue_count=count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                pop_receipt=message.pop_receipt,
            )
            await self._call(spec, trigger, record)
        except Exception as error:
            poison = count >= q.max_dequeue_count
            try:
                if poison:
                    await asyncio.to_thread(self._to_poison, spec, client, message)
                else:
                    seconds = int(q.visibility_timeout.total_seconds())
                    with self._state:
                        self._retry_due = max(
                            self._retry_due, time.monotonic() + q.visibility_timeout.total_seconds()
                        )
                    await asyncio.to_thread(
                        client.update_message,
                        message,
                        pop_receipt=message.pop_receipt,
                        visibility_timeout=seconds,
                    )
            except AzureError as storage_error:
                log.warning("could not release message %s: %s", message.id, storage_error)
            self._end(record, error, poisoned=poison)
            return
        try:
            await asyncio.to_thread(client.delete_message, message, message.pop_receipt)
        except AzureError as storage_error:
            log.warning("could not delete message %s: %s", message.id, storage_error)
        self._end(record)

    def _to_poison(self, spec: FunctionSpec, client: QueueClient, message: QueueMessage) -> None:
        poison = self._client(spec.connection, f"{spec.queue_name}-poison")
        with contextlib.suppress(ResourceExistsError):
            poison.create_queue()
        poison.send_message(message.content)  # copied as stored: same encoding
        client.delete_message(message, message.pop_receipt)

    def _queue_counts(self, visible_only: bool = False) -> dict[str, int]:
        counts: dict[str, int] = {}
        for spec in self.functions.values():
            if spec.trigger != QUEUE:
                continue
            client = self._client(spec.connection, spec.queue_name)
            try:
                if visible_only:
                    counts[spec.queue_name] = len(client.peek_messages(max_messages=32))
                    continue
                counts[spec.queue_name] = (
                    client.get_queue_properties().approximate_message_count or 0
                )
            except ResourceNotFoundError:
                counts[spec.queue_name] = 0
        return counts

    # ---------------------------------------------------------------- idleness
    async def wait_idle_async(
        self, timeout: float = 30.0, settle: float = 0.0, *, scheduled_ok: bool = False
    ) -> None:
        """Wait until every trigger queue is empty and no invocation is in flight.

        `scheduled_ok`: messages sent with a visibility delay (the service's "look again in
        15 minutes") do not count, as long as no failed message is waiting for its retry.
        Works from any event loop (it only reads thread-safe state and storage).
        """
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while True:
            with self._state:
                before = (self._started_count, self._ended_count)
                retrying = self._retry_due > time.monotonic()
            if before[0] == before[1]:
                counts = await asyncio.to_thread(self._queue_counts, scheduled_ok and not retrying)
                with self._state:
                    after = (self._started_count, self._ended_count)
                if after == before and not any(counts.values()):
                    if settle <= 0:
                        return
                    await asyncio.sleep(settle)
                    settle = 0
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"devhost not idle after {timeout:.1f} s: {self.in_flight} in flight, "
                    f"queue counts {counts}"
                )
            await asyncio.sleep(0.05)

    def wait_idle(
        self, timeout: float = 30.0, settle: float = 0.0, *, scheduled_ok: bool = False
    ) -> None:
        """Blocking `wait_idle_async` (call it from any thread but the host's own loop)."""
        asyncio.run(self.wait_idle_async(timeout, settle, scheduled_ok=scheduled_ok))

    def describe(self) -> list[str]:
        """One line per function, like Core Tools' startup listing."""
        lines = []
        for spec in self.functions.values():
            if spec.trigger == HTTP:
                methods = ",".join(spec.methods) if spec.methods != ALL_METHODS else "*"
                url = self._display_url(spec) if self._ready.is_set() else ""
                lines.append(f"{spec.name}: [{methods}] {url}  (auth: {spec.auth_level.lower()})")
            elif spec.trigger == QUEUE:
                outs = _outputs_text(spec.outputs)
                lines.append(f"{spec.name}: queueTrigger {spec.queue_name}{outs}")
            else:
                schedule = spec.schedule.expression if spec.schedule else "?"
                startup = ", runOnStartup" if spec.run_on_startup else ""
                lines.append(f"{spec.name}: timerTrigger '{schedule}' (UTC{startup})")
        return lines


def _outputs_text(outputs: Iterable[QueueOutput]) -> str:
    names = [o.queue_name for o in outputs]
    return f" -> {', '.join(names)}" if names else ""
