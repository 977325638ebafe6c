"""The `license-guard` command line: the admin's way to run the same code paths by hand.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

import orjson

from shared.catalog import catalog
from shared.core.evaluate import evaluate
from shared.report import evaluation_json, path_rows, render_table, write_csv
from shared.snapshot import SnapshotError, load_snapshot

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="license-guard",
        description="Entra License Guard: check Microsoft Entra group-based licensing.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    evaluate_cmd = commands.add_parser(
        "evaluate",
        help="evaluate a tenant snapshot: effective licenses, findings and seat demand",
        description=(
            "Compute every user's effective licenses from group memberships and direct "
            "assignments, compare them with what Graph reports, and list findings with fixes."
        ),
    )
    evaluate_cmd.add_argument(
        "--snapshot", required=True, metavar="FILE", help="tenant snapshot JSON (see README)"
    )
    evaluate_cmd.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default): readable summary; json: full document; csv: assignment paths",
    )
    evaluate_cmd.add_argument(
        "--out", metavar="FILE", help="write to FILE instead of standard output"
    )
    return parser


def run_evaluate(args: argparse.Namespace, out: IO[str]) -> int:
    loaded = load_snapshot(args.snapshot)
    for warning in loaded.warnings:
        print(f"license-guard: warning: {warning}", file=sys.stderr)
    tenant = loaded.tenant
    if args.format == "json":
        evaluation = evaluate(tenant)
        document = evaluation_json(evaluation, tenant)
        out.flush()
        _write_bytes(out, orjson.dumps(document) + b"\n")
        return EXIT_OK
    names = catalog()
    product_names = {s: names.product(s, tenant.skus[s].part_number) for s in tenant.skus}
    plan_names = {p.id: names.plan(p.id, p.name) for s in tenant.skus.values() for p in s.plans}
    evaluation = evaluate(tenant, product_names, plan_names)
    if args.format == "csv":
        write_csv(path_rows(evaluation, tenant, names), out)
    else:
        out.write(render_table(evaluation, tenant, names))
    return EXIT_OK


def _write_bytes(out: IO[str], data: bytes) -> None:
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        out.write(data.decode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.out:
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                return run_evaluate(args, out)
        return run_evaluate(args, sys.stdout)
    except SnapshotError as exc:
        print(f"license-guard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
