"""Command line: `python -m graphsim --tenant FILE | --synthetic SPEC [--port N] [--token T]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from .app import create_app
from .clock import SimClock
from .server import run


def load_tenant(args: argparse.Namespace) -> dict[str, Any]:
    """The tenant the arguments name (also used to rebuild it on /_sim/reset)."""
    if args.tenant:
        data = orjson.loads(Path(args.tenant).read_bytes())
        if not isinstance(data, dict):
            raise SystemExit("tenant file must hold a JSON object")
        return data
    # imported only when asked for: synthetic tenants are a separate, optional generator
    from .synthetic import generate_tenant, parse_synthetic_spec  # noqa: PLC0415

    tenant: dict[str, Any] = generate_tenant(**parse_synthetic_spec(args.synthetic))
    return tenant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphsim", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tenant", help="tenant snapshot JSON file")
    source.add_argument("--synthetic", help="e.g. users=100000,groups=60,skus=30,seed=7")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="accept only this bearer token")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for faults and notification faults"
    )
    parser.add_argument(
        "--frozen-clock",
        action="store_true",
        help="simulated time moves only when advanced via /_sim/clock",
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    app = create_app(
        load_tenant(args),
        token=args.token,
        seed=args.seed,
        clock=SimClock(frozen=args.frozen_clock),
        tenant_factory=lambda: load_tenant(args),
    )
    run(app, args.host, args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
