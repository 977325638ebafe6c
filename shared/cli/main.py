"""The `license-guard` command line: the admin's way to run the same code paths by hand.

Commands: `evaluate` (a snapshot's effective licenses and findings), `whatif` (planned
membership and plan changes on a snapshot), `diff` (drift between two snapshots) and
`report migration` (the direct -> group migration plan); against a live tenant
(`shared.cli.live`): `snapshot`, `reconcile [--dry-run]` and `report paths`; and `preflight`
(`shared.cli.preflight`: is a deployment ready?).

Exit status: 0 success, 1 a risk was found (whatif: data loss or predicted assignment errors;
diff: data loss), 2 bad input or I/O (one line on stderr, no traceback). `--version`.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import orjson

from shared.adapters.snapshot import SnapshotError, load_snapshot
from shared.catalog.capabilities import CapabilityMapError, capabilities
from shared.catalog.plan_conflicts import PlanConflictsError, plan_conflicts
from shared.catalog.products import catalog
from shared.cli.act import add_reprocess_command
from shared.cli.env import LocalSettingsError
from shared.cli.live import LiveError, add_live_commands, add_paths_report
from shared.cli.preflight_args import add_preflight_command
from shared.cli.report import add_html_report
from shared.core.drift import diff_tenants
from shared.core.evaluate import evaluate
from shared.core.findings import Names
from shared.core.migration import migration_plan
from shared.core.model import Tenant
from shared.core.whatif import (
    AddMember,
    AddSku,
    BadReference,
    Change,
    DeleteGroup,
    RemoveMember,
    RemoveSku,
    SetDisabledPlans,
    find_group,
    find_plans,
    find_sku,
    find_user,
    what_if,
)
from shared.render.csvsafe import write_rows
from shared.render.drift import diff_json, render_diff_table
from shared.render.evaluation import render_table, write_evaluation_json
from shared.render.migration import (
    MIGRATION_CSV_HEADER,
    migration_json,
    migration_rows,
    render_migration_table,
)
from shared.render.migration_script import SCRIPT_KINDS, render_script
from shared.render.paths import path_rows, write_csv
from shared.render.whatif import render_whatif_table, whatif_json

EXIT_OK = 0
EXIT_DATA_LOSS = 1
EXIT_BAD_INPUT = 2
_TEXT: dict[str, Any] = {"encoding": "utf-8", "newline": ""}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="license-guard",
        description="Entra License Guard: check Microsoft Entra group-based licensing.",
        epilog=(
            "exit status: 0 success, 1 the command's documented condition (a risk found, "
            "findings at or above --fail-on), 2 bad input or I/O (one line on standard error)"
        ),
    )
    parser.add_argument("--version", action="version", version=f"license-guard {version()}")
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
    evaluate_cmd.add_argument(
        "--all",
        action="store_true",
        dest="show_all",
        help="table: list users without findings too (by default only their count)",
    )
    evaluate_cmd.set_defaults(func=run_evaluate)
    _add_whatif(commands)
    _add_diff(commands)
    add_live_commands(commands)
    add_preflight_command(commands)
    add_reprocess_command(commands)
    reports = commands.add_parser(
        "report",
        help="reports: migration (from a snapshot), paths (from a live scan), html (either)",
        description="Reports on a tenant snapshot (migration) or a live tenant (paths).",
    )
    kinds = reports.add_subparsers(dest="report", required=True, metavar="REPORT")
    _add_migration(kinds)
    add_paths_report(kinds)
    add_html_report(kinds)
    return parser


_OUT_HELP = "write to FILE instead of standard output"
_EXIT_EPILOG = (
    "exit status: 0 no data-loss risk, 1 data-loss risk found (a user would lose every plan "
    "of a mailbox or OneDrive), 2 bad input"
)
_WHATIF_EPILOG = (
    "exit status: 0 no risk, 1 risk found (a user would lose every plan of a mailbox or "
    "OneDrive, or Entra would likely record an assignment error), 2 bad input or I/O"
)


class _ChangeAction(argparse.Action):
    """Collects --add-member/--remove-member/--set-disabled-plans in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        changes = list(getattr(namespace, "changes", None) or [])
        values = [values] if isinstance(values, str) else list(values)
        if self.const == "disabled":
            if not changes or changes[-1][0] != "addsku" or len(changes[-1][1]) != 2:
                parser.error("--disabled-plans must follow an --add-sku GROUP SKU")
            changes[-1] = ("addsku", [*changes[-1][1], values[0]])
        else:
            changes.append((self.const, values))
        namespace.changes = changes


# flag, nargs, metavar, the change kind _ChangeAction records, help; in --help order
_CHANGE_FLAGS: tuple[tuple[str, int | None, str | tuple[str, ...], str, str], ...] = (
    (
        "--add-member",
        2,
        ("GROUP", "USER"),
        "add",
        "add USER as a direct member of GROUP (repeatable)",
    ),
    ("--remove-member", 2, ("GROUP", "USER"), "remove", "remove USER from GROUP (repeatable)"),
    (
        "--set-disabled-plans",
        3,
        ("GROUP", "SKU", "PLANS"),
        "plans",
        "set GROUP's disabled plans of SKU to PLANS (assigns SKU to GROUP if it does not "
        "yet; repeatable)",
    ),
    (
        "--delete-group",
        None,
        "GROUP",
        "delete",
        "delete GROUP: its members lose what it assigns (repeatable)",
    ),
    (
        "--remove-sku",
        2,
        ("GROUP", "SKU"),
        "removesku",
        "remove SKU from GROUP's licenses (repeatable)",
    ),
    (
        "--add-sku",
        2,
        ("GROUP", "SKU"),
        "addsku",
        "assign SKU to GROUP, every plan enabled unless --disabled-plans follows",
    ),
    (
        "--disabled-plans",
        None,
        "PLANS",
        "disabled",
        "the plans disabled by the --add-sku just before it",
    ),
)


def _add_whatif(commands: Any) -> None:
    cmd = commands.add_parser(
        "whatif",
        help="what if: apply membership and plan changes to a snapshot, show gains and losses",
        description=(
            "Apply planned changes to a tenant snapshot (nothing is sent to Microsoft), "
            "recompute effective licenses, and show each affected user's gains and losses, "
            "seats needed per product, and capabilities at risk (a mailbox or OneDrive that no "
            "path would provide any more), and the assignment errors Entra would likely record "
            "(MutuallyExclusiveViolation from the table of conflicting plans and the tenant's own "
            "errors, CountViolation from free seats, ProhibitedInUsageLocationViolation where "
            "the tenant shows it). Changes apply in the order given. GROUP: id or exact "
            "display name; USER: id, userPrincipalName or exact display name; SKU: skuId or "
            "skuPartNumber; PLANS: comma-separated servicePlanNames ('' enables all)."
        ),
        epilog=_WHATIF_EPILOG,
    )
    cmd.add_argument("--snapshot", required=True, metavar="FILE", help="tenant snapshot JSON")
    for flag, nargs, metavar, const, text in _CHANGE_FLAGS:
        cmd.add_argument(
            flag,
            nargs=nargs,
            metavar=metavar,
            action=_ChangeAction,
            const=const,
            dest="changes",
            help=text,
        )
    cmd.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    cmd.add_argument("--out", metavar="FILE", help=_OUT_HELP)
    cmd.set_defaults(func=run_whatif, changes=[])


def _add_diff(commands: Any) -> None:
    cmd = commands.add_parser(
        "diff",
        help="drift between two snapshots: licensing configuration and users' licenses",
        description=(
            "Compare two snapshots of a tenant: licensed groups (products added or removed, "
            "disabled plans, dynamic membership rule, licensing gained or lost, members), "
            "products (new service plans and the groups they reach, prepaid seats), and every "
            "user's gains and losses of effective licenses, with capabilities lost."
        ),
        epilog=_EXIT_EPILOG,
    )
    cmd.add_argument("old", metavar="OLD", help="the earlier tenant snapshot JSON")
    cmd.add_argument("new", metavar="NEW", help="the later tenant snapshot JSON")
    cmd.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    cmd.add_argument("--out", metavar="FILE", help=_OUT_HELP)
    cmd.set_defaults(func=run_diff)


def _add_migration(kinds: Any) -> None:
    cmd = kinds.add_parser(
        "migration",
        help="the direct -> group migration plan",
        description=(
            "Sort every direct assignment: removal candidates fully covered by healthy group "
            "paths (remove gradually, a subset first), those whose removal would drop plans "
            "(named), and products held only directly, grouped by product and disabled plans "
            "with a suggested licensing group for each."
        ),
    )
    cmd.add_argument("--snapshot", required=True, metavar="FILE", help="tenant snapshot JSON")
    cmd.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default), json, or csv (one row per direct assignment)",
    )
    cmd.add_argument(
        "--script",
        choices=SCRIPT_KINDS,
        help=(
            "instead of a report, write a script for a human to review that removes only the "
            "direct assignments proven safe (ps1: Microsoft Graph PowerShell; sh: az rest)"
        ),
    )
    cmd.add_argument("--out", metavar="FILE", help=_OUT_HELP)
    cmd.set_defaults(func=run_migration)


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
    evaluation = evaluate(tenant, *names.names_for(tenant))
    with _output(args.out, binary=False) as text:
        if args.format == "csv":
            write_csv(path_rows(evaluation, tenant, names), text)
        else:
            text.write(render_table(evaluation, tenant, names, show_healthy=args.show_all))
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


def _load(path: str) -> Tenant:
    loaded = load_snapshot(path)
    for warning in loaded.warnings:
        print(f"license-guard: warning: {warning}", file=sys.stderr)
    return loaded.tenant


def _write_json(document: Any, path: str | None) -> None:
    with _output(path, binary=True) as out:
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _write_text(text: str, path: str | None) -> None:
    with _output(path, binary=False) as out:
        out.write(text)


def parse_changes(tenant: Tenant, raw: Sequence[tuple[str, list[str]]]) -> list[Change]:
    """Resolve the command line's changes against the tenant (BadReference on a bad name)."""
    changes: list[Change] = []
    for kind, values in raw:
        group = find_group(tenant, values[0])
        if kind == "plans":
            sku = find_sku(tenant, values[1])
            changes.append(SetDisabledPlans(group.id, sku.id, find_plans(sku, values[2])))
        elif kind == "addsku":
            sku = find_sku(tenant, values[1])
            plans = find_plans(sku, values[2]) if len(values) > 2 else frozenset()
            changes.append(AddSku(group.id, sku.id, plans))
        elif kind == "removesku":
            changes.append(RemoveSku(group.id, find_sku(tenant, values[1]).id))
        elif kind == "delete":
            changes.append(DeleteGroup(group.id))
        elif kind == "add":
            changes.append(AddMember(group.id, find_user(tenant, values[1]).id))
        else:
            changes.append(RemoveMember(group.id, find_user(tenant, values[1]).id))
    return changes


def run_whatif(args: argparse.Namespace) -> int:
    tenant = _load(args.snapshot)
    changes = parse_changes(tenant, args.changes)
    caps = capabilities()
    table = plan_conflicts()
    if args.format == "json":
        result = what_if(tenant, changes, caps.plans, labels=caps.labels, conflicts=table)
        _write_json(whatif_json(result, tenant), args.out)
    else:
        names = catalog()
        products, plans = names.names_for(tenant)
        result = what_if(tenant, changes, caps.plans, products, plans, caps.labels, table)
        _write_text(render_whatif_table(result, tenant, names), args.out)
    return EXIT_DATA_LOSS if result.data_loss or result.predicted_errors else EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    old, new = _load(args.old), _load(args.new)
    caps = capabilities()
    names = catalog() if args.format == "table" else None
    products, plans = names.names_for(old) if names else (None, None)
    if names:
        new_products, new_plans = names.names_for(new)
        products, plans = {**new_products, **(products or {})}, {**new_plans, **(plans or {})}
    before = evaluate(old, products, plans)
    after = evaluate(new, products, plans)
    drift = diff_tenants(
        old, new, before, after, caps.plans, Names(old, products, plans), caps.labels
    )
    if names is None:
        _write_json(diff_json(drift, old, new), args.out)
    else:
        _write_text(render_diff_table(drift, old, new, names), args.out)
    return EXIT_DATA_LOSS if drift.losses else EXIT_OK


def run_migration(args: argparse.Namespace) -> int:
    tenant = _load(args.snapshot)
    plan = migration_plan(tenant)
    if args.script:
        script = render_script(args.script, plan, tenant, catalog(), capabilities().plans)
        _write_text(script, args.out)
        return EXIT_OK
    if args.format == "json":
        _write_json(migration_json(plan, tenant), args.out)
        return EXIT_OK
    names = catalog()
    if args.format == "csv":
        with _output(args.out, binary=False) as text:
            write_rows(MIGRATION_CSV_HEADER, migration_rows(plan, tenant, names), text)
    else:
        _write_text(render_migration_table(plan, tenant, names), args.out)
    return EXIT_OK


def version() -> str:
    """The installed package's version (the source tree's pyproject when not installed)."""
    try:
        return metadata.version("entra-license-guard")
    except metadata.PackageNotFoundError:
        return "unknown"


def io_error_text(exc: OSError) -> str:
    """One line for a file that cannot be read or written: the path and the reason."""
    reason = exc.strerror or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except (
        SnapshotError,
        BadReference,
        CapabilityMapError,
        PlanConflictsError,
        LiveError,
        LocalSettingsError,
    ) as exc:
        print(f"license-guard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        print(f"license-guard: error: {io_error_text(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
