"""How the live commands reach a tenant: sign in to Graph (`sign_in`), run a command's async
work with its log lines on stderr (`run_job`), scan the tenant (`run_scan`) or work as the
service does (`run_service_job`); a Graph, storage or settings error is a `LiveError` (exit 2).

The Graph SDK and the storage SDKs are imported only when a live command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from shared.cli.env import cli_environment
from shared.cli.progress import Progress
from shared.platform.settings import DEFAULT_GRAPH_BASE_URL, SettingsError
from shared.ports.directory import Directory, DirectoryError

if TYPE_CHECKING:
    from shared.bootstrap import GraphSession
    from shared.service.services import Services

_T = TypeVar("_T")


class LiveError(Exception):
    """The tenant cannot be read (bad URL or token, Graph refused): one line, exit 2."""


class _Stderr:
    """Whatever sys.stderr is at the time of each write (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _graph(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    env = cli_environment() if env is None else env
    base = args.graph_base_url or env.get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL
    token = args.token or env.get("GRAPH_STATIC_TOKEN") or None
    return base, token


def sign_in(args: argparse.Namespace, credential: Any = None) -> GraphSession:
    """The directory the command reads: `--token`/GRAPH_STATIC_TOKEN (graphsim), else an
    azure-identity credential (`credential`, or DefaultAzureCredential: `az login`) for the
    cloud GRAPH_BASE_URL names."""
    # the Graph SDK only when used
    from shared.adapters.graph_auth import GraphEndpointError  # noqa: PLC0415
    from shared.bootstrap import graph_session  # noqa: PLC0415

    base, token = _graph(args)
    if not base.startswith(("http://", "https://")):
        raise LiveError(f"--graph-base-url: {base!r} is not an absolute http(s) URL")
    try:
        return graph_session(base, static_token=token, credential=credential)
    except GraphEndpointError as exc:
        raise LiveError(str(exc)) from None


def logs_to_stderr() -> None:
    """The command's output is standard output (`snapshot > tenant.json`, `--format json`);
    the service's log lines (a retried Graph connection, a run's events) go to stderr, in UTC."""
    import structlog  # noqa: PLC0415 - 0.1 s of imports (rich) the snapshot commands skip

    from shared.platform.logging import configure_console  # noqa: PLC0415 - likewise

    if not structlog.is_configured():
        configure_console(cast(TextIO, _Stderr()))


def run_job(job: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a command's async work, its log lines on stderr; a Graph or storage error becomes a
    LiveError (exit 2, no traceback): storage refusing the sign-in (no data role) is what an
    admin meets first."""
    import asyncio  # noqa: PLC0415 - only the live commands pay for it

    from azure.core.exceptions import AzureError  # noqa: PLC0415 - likewise

    logs_to_stderr()
    try:
        return asyncio.run(job())
    except DirectoryError as exc:
        raise LiveError(f"cannot read the tenant: {exc}") from None
    except AzureError as exc:
        raise LiveError(f"storage: {storage_error_text(exc)}") from None


def storage_error_text(exc: Any) -> str:
    """The storage SDK's error in one line: its error code and the first line of its message."""
    lines = str(getattr(exc, "message", None) or exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    code = getattr(exc, "error_code", None)
    return f"{code}: {text}" if code else text


def run_scan(args: argparse.Namespace, work: Callable[[Directory, Progress], Awaitable[_T]]) -> _T:
    """A command's scan of the live tenant: sign in (`sign_in`), run `work` with the directory
    and a progress line on standard error, then close both; a Graph error is a LiveError."""
    signed_in = sign_in(args)
    progress = Progress(args.quiet)

    async def job() -> _T:
        try:
            return await work(signed_in.directory, progress)
        finally:
            progress.close()
            await signed_in.aclose()

    return run_job(job)


def run_service_job(args: argparse.Namespace, work: Callable[[Services], Awaitable[_T]]) -> _T:
    """A command that works as the service does (reconcile, reprocess): the service's own
    `Services` from the app's settings, `--graph-base-url`/`--token` over them, closed after
    `work`; settings that cannot be used are a LiveError, as a Graph or storage error is."""
    from shared.adapters.graph_auth import GraphEndpointError  # noqa: PLC0415
    from shared.bootstrap import build_services, close_services  # noqa: PLC0415 - storage only when asked

    logs_to_stderr()
    env = cli_environment()
    base, token = _graph(args, env)
    env["GRAPH_BASE_URL"] = base
    if token:
        env["GRAPH_STATIC_TOKEN"] = token
    try:
        svc = build_services(env)
    except SettingsError as exc:
        raise LiveError(f"settings: {exc}") from None
    except GraphEndpointError as exc:
        raise LiveError(str(exc)) from None

    async def job() -> _T:
        try:
            return await work(svc)
        finally:
            await close_services(svc)

    return run_job(job)
