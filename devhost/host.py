"""DevHost: runs a v2-model function app locally with the Functions host's trigger semantics.

One background thread runs an asyncio loop holding a uvicorn server (HTTP triggers and the
admin API), one poller per queue-triggered function (Azurite or any storage connection string)
and one scheduler per timer. Sync functions run in a thread pool, async ones on the loop, so a
function may call back into the same host while it is in flight.

This module builds the host and runs its loop; each trigger kind lives in its own module:
`devhost.http_triggers`, `devhost.queue_triggers`, `devhost.timer_triggers`,
`devhost.admin_api`, over the shared state in `devhost.runtime`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import threading
from collections import ChainMap, Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route as StarletteRoute

from devhost.admin_api import AdminApi
from devhost.config import DevHostError, HostOptions, read_host_json
from devhost.index import ALL_METHODS, HTTP, QUEUE, TIMER, FunctionSpec, QueueOutput, index_app
from devhost.invocation import Invocation, InvocationContext, error_text
from devhost.queue_triggers import RECEIVE_VISIBILITY_SECONDS, QueueTriggers

__all__ = ["RECEIVE_VISIBILITY_SECONDS", "DevHost", "Invocation", "InvocationContext"]

log = logging.getLogger("devhost")

# Documented: maxPollingInterval defaults to 1 minute, but 2 seconds when running locally.
LOCAL_MAX_POLLING_INTERVAL = timedelta(seconds=2)


class DevHost(AdminApi, QueueTriggers):
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
        self._receiving = 0  # queue receives under way: what they take is not yet begun
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

    # ---------------------------------------------------------------- settings
    def _thread_count(self) -> int:
        configured = self._lookup.get("PYTHON_THREADPOOL_THREAD_COUNT")
        if configured:
            return max(1, int(configured))
        return min(32, (os.cpu_count() or 1) + 4)

    # ---------------------------------------------------------------- lifecycle
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
                raise DevHostError(f"devhost failed to start: {error_text(error)}") from error
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
            # longer than a client's pool keeps an idle connection (httpx: 5 s, uvicorn's
            # default too): else a request can meet the server closing it ("reset by peer")
            timeout_keep_alive=75,
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

    def _asgi_app(self) -> Starlette:
        return Starlette(
            routes=[
                StarletteRoute("/admin/host/status", self._admin_status, methods=["GET"]),
                StarletteRoute("/admin/functions/{name}", self._admin_invoke, methods=["POST"]),
                StarletteRoute("/admin/functions", self._admin_list, methods=["GET"]),
                StarletteRoute("/{path:path}", self._http, methods=list(ALL_METHODS)),
            ]
        )

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
