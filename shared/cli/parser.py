"""The `license-guard` argument parser: every command, its flags and help, and `--version`.

The snapshot commands are declared here; the live, preflight, reprocess and html commands in
their modules. Each is a `shared.cli.command.Command` (texts, its own flags, what runs it),
added by `build_parser` in `--help` order; flags several commands share come from
`shared.cli.options`. Each command's `func` is what `main` runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shared.cli.act import REPROCESS
from shared.cli.command import Command
from shared.cli.live import PATHS, RECONCILE, SNAPSHOT
from shared.cli.options import add_format_option, add_out_option, add_snapshot_option
from shared.cli.preflight_args import PREFLIGHT
from shared.cli.report import HTML
from shared.cli.snapshot_commands import run_diff, run_evaluate, run_migration, run_whatif
from shared.render.migration_script import SCRIPT_KINDS

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


def _whatif_flags(cmd: argparse.ArgumentParser) -> None:
    add_snapshot_option(cmd)
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
    add_format_option(cmd, "table", "json")
    add_out_option(cmd)
    cmd.set_defaults(changes=[])


WHATIF = Command(
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
    run=run_whatif,
    flags=_whatif_flags,
)


def _diff_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("old", metavar="OLD", help="the earlier tenant snapshot JSON")
    cmd.add_argument("new", metavar="NEW", help="the later tenant snapshot JSON")
    add_format_option(cmd, "table", "json")
    add_out_option(cmd)


DIFF = Command(
    "diff",
    help="drift between two snapshots: licensing configuration and users' licenses",
    description=(
        "Compare two snapshots of a tenant: licensed groups (products added or removed, "
        "disabled plans, dynamic membership rule, licensing gained or lost, members), "
        "products (new service plans and the groups they reach, prepaid seats), and every "
        "user's gains and losses of effective licenses, with capabilities lost."
    ),
    epilog=_EXIT_EPILOG,
    run=run_diff,
    flags=_diff_flags,
)


def _migration_flags(cmd: argparse.ArgumentParser) -> None:
    add_snapshot_option(cmd)
    add_format_option(
        cmd,
        "table",
        "json",
        "csv",
        text="table (default), json, or csv (one row per direct assignment)",
    )
    cmd.add_argument(
        "--script",
        choices=SCRIPT_KINDS,
        help=(
            "instead of a report, write a script for a human to review that removes only the "
            "direct assignments proven safe (ps1: Microsoft Graph PowerShell; sh: az rest)"
        ),
    )
    cmd.add_argument(
        "--graph-base-url",
        metavar="URL",
        help=(
            "--script: the Graph of the tenant's cloud (default: GRAPH_BASE_URL, else "
            "https://graph.microsoft.com/v1.0)"
        ),
    )
    add_out_option(cmd)


MIGRATION = Command(
    "migration",
    help="the direct -> group migration plan",
    description=(
        "Sort every direct assignment: removal candidates fully covered by healthy group "
        "paths (remove gradually, a subset first), those whose removal would drop plans "
        "(named), and products held only directly, grouped by product and disabled plans "
        "with a suggested licensing group for each."
    ),
    run=run_migration,
    flags=_migration_flags,
)


def _evaluate_flags(cmd: argparse.ArgumentParser) -> None:
    add_snapshot_option(cmd, "tenant snapshot JSON (see README)")
    add_format_option(
        cmd,
        "table",
        "json",
        "csv",
        text="table (default): readable summary; json: full document; csv: assignment paths",
    )
    add_out_option(cmd)
    cmd.add_argument(
        "--all",
        action="store_true",
        dest="show_all",
        help="table: list users without findings too (by default only their count)",
    )


EVALUATE = Command(
    "evaluate",
    help="evaluate a tenant snapshot: effective licenses, findings and seat demand",
    description=(
        "Compute every user's effective licenses from group memberships and direct "
        "assignments, compare them with what Graph reports, and list findings with fixes."
    ),
    run=run_evaluate,
    flags=_evaluate_flags,
)

# in `--help` order; `report` (after them) groups REPORTS
COMMANDS = (EVALUATE, WHATIF, DIFF, SNAPSHOT, RECONCILE, PREFLIGHT, REPROCESS)
REPORTS = (MIGRATION, PATHS, HTML)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="license-guard",
        description="Entra License Guard: check Microsoft Entra group-based licensing.",
        epilog=(
            "exit status: 0 success, 1 the command's documented condition (a risk found, a "
            "user not reprocessed, a deployment not ready), 2 bad input or I/O (one line on "
            "standard error), 130 interrupted (Ctrl-C)"
        ),
    )
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(commands)
    reports = commands.add_parser(
        "report",
        help="reports: migration (from a snapshot), paths (from a live scan), html (either)",
        description="Reports on a snapshot (migration), a live tenant (paths) or either (html).",
    )
    kinds = reports.add_subparsers(dest="report", required=True, metavar="REPORT")
    for report in REPORTS:
        report.add_to(kinds)
    return parser


class _Version(argparse.Action):
    """argparse's version action, reading the installed version only when asked (reading
    package metadata costs every command, `evaluate` included, some 30 ms)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"license-guard {version()}\n")
        parser.exit()


def version() -> str:
    """The installed package's version (the source tree's pyproject when not installed)."""
    from importlib import metadata  # noqa: PLC0415 - see _Version

    try:
        return metadata.version("entra-license-guard")
    except metadata.PackageNotFoundError:
        return "unknown"
