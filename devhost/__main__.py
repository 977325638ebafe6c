"""`python -m devhost`: run the function app locally (HTTP, queue and timer triggers)."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from devhost.config import DevHostError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Run the function app locally (no Core Tools)."
    )
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the app")
    parser.add_argument(
        "--settings",
        help="local.settings.json-format file (default: ./local.settings.json if present); "
        "environment variables override its Values",
    )
    parser.add_argument("--host-json", default="host.json", help="host.json path")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (loopback)")
    parser.add_argument("--port", type=int, help="HTTP port (default: Host.LocalHttpPort or 7071)")
    parser.add_argument("--function-key", help="the function key (default: generated)")
    parser.add_argument("--master-key", help="the master key for /admin (default: generated)")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="queue poll seconds")
    return parser


def load_app(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute or "app")
    except AttributeError:
        raise DevHostError(
            f"module {module_name!r} has no attribute {attribute or 'app'!r}"
        ) from None


def _default_port(settings_file: Path | None) -> int:
    if settings_file is not None and settings_file.exists():
        document = json.loads(settings_file.read_text(encoding="utf-8"))
        port = (
            (document.get("Host") or {}).get("LocalHttpPort")
            if isinstance(document, dict)
            else None
        )
        if isinstance(port, int):
            return port
    return 7071


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings_file = Path(args.settings) if args.settings else None
    if settings_file is None and Path("local.settings.json").exists():
        settings_file = Path("local.settings.json")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from devhost.host import DevHost  # noqa: PLC0415 - keeps `--help` fast

        settings = load_settings(settings_file)
        app = load_app(args.app)
        port = args.port if args.port is not None else _default_port(settings_file)
        host = DevHost(
            app,
            settings,
            host=args.host,
            port=port,
            function_key=args.function_key,
            master_key=args.master_key,
            poll_interval=args.poll_interval,
            host_json_path=args.host_json,
        )
        host.start()
    except (DevHostError, ImportError, OSError, ValueError) as error:
        print(f"devhost: {error}", file=sys.stderr)  # noqa: T201 - CLI output
        return 2
    try:
        out = sys.stdout
        out.write(f"Functions ({len(host.functions)}):\n")
        for line in host.describe():
            out.write(f"  {line}\n")
        out.write(f"Function key: {host.function_key}\nMaster key:   {host.master_key}\n")
        out.write(f"Host started on {host.base_url} (Ctrl+C to stop)\n")
        out.flush()
        while not stop.wait(0.5):
            pass
    finally:
        host.stop()
    sys.stdout.write("Host stopped\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
