"""Running graphsim over real HTTP: uvicorn in the foreground (CLI) or in a background thread
on a free loopback port (tests, demos)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import API_PREFIX, create_app
from .clock import SimClock


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await app.state.sim.close()


KEEP_ALIVE_SECONDS = 75
"""How long an idle connection is kept open: longer than a client's pool keeps one (httpx: 5 s,
uvicorn's own default too). With equal times a client could send on a connection the server
was closing that instant, and read "connection reset by peer" (a chaos bench run failed so)."""


def _config(app: Starlette, log_level: str) -> uvicorn.Config:
    app.router.lifespan_context = _lifespan
    return uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def run(
    app: Starlette, host: str, port: int, *, log_level: str = "warning", announce: bool = True
) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own handlers shut down gracefully)."""
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if announce:
        print(f"graphsim listening on http://{shown}:{actual}{API_PREFIX}", flush=True)  # noqa: T201
    server = uvicorn.Server(_config(app, log_level))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # handlers found at start: make those a clean exit (status 0) rather than a kill.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_cleanly)
    server.run(sockets=[sock])


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def serve_app_in_thread(app: Starlette, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` from a daemon thread; yields the Graph base URL (http://host:port/v1.0)."""
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, "warning"))
    # uvicorn installs signal handlers only on the main thread, so Ctrl-C stays with the caller
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"graphsim-{actual}"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("graphsim server failed to start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{actual}{API_PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def serve_in_thread(
    tenant: dict[str, Any],
    port: int = 0,
    *,
    token: str | None = None,
    seed: int = 0,
    clock: SimClock | None = None,
) -> Iterator[str]:
    """Build an app for `tenant` and serve it on loopback; yields the Graph base URL."""
    app = create_app(tenant, token=token, seed=seed, clock=clock)
    with serve_app_in_thread(app, port) as url:
        yield url
