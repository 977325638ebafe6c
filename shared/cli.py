"""The `license-guard` command line: the admin's way to run the same code paths by hand.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.catalog import catalog
from shared.core.evaluate import evaluate
from shared.report import path_rows, render_table, write_csv, write_evaluation_json
from shared.snapshot import SnapshotError, load_snapshot

EXIT_OK = 0
EXIT_BAD_INPUT = 2
_TEXT: dict[str, Any] = {"encoding": "utf-8", "newline": ""}


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


@contextmanager
def _without_gc() -> Iterator[None]:
    """A one-shot run builds millions of objects and frees few: generational collection would
    walk the whole heap again and again for nothing (it more than doubles the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_evaluate(args: argparse.Namespace) -> int:
    with _without_gc():
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    loaded = load_snapshot(args.snapshot)
    for warning in loaded.warnings:
        print(f"license-guard: warning: {warning}", file=sys.stderr)
    tenant = loaded.tenant
    if args.format == "json":
        # Machine output: messages name products by part number, no catalog needed.
        evaluation = evaluate(tenant)
        with _output(args.out, binary=True) as out:
            write_evaluation_json(evaluation, tenant, out)
        return EXIT_OK
    names = catalog()
    product_names = {s: names.product(s, tenant.skus[s].part_number) for s in tenant.skus}
    plan_names = {p.id: names.plan(p.id, p.name) for s in tenant.skus.values() for p in s.plans}
    evaluation = evaluate(tenant, product_names, plan_names)
    with _output(args.out, binary=False) as text:
        if args.format == "csv":
            write_csv(path_rows(evaluation, tenant, names), text)
        else:
            text.write(render_table(evaluation, tenant, names))
    return EXIT_OK


@contextmanager
def _output(path: str | None, *, binary: bool) -> Iterator[Any]:
    """The --out file, or standard output (its byte buffer for binary output)."""
    if path:
        with open(path, "wb" if binary else "w", **({} if binary else _TEXT)) as handle:
            yield handle
    else:
        yield sys.stdout.buffer if binary else sys.stdout
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_evaluate(args)
    except SnapshotError as exc:
        print(f"license-guard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
