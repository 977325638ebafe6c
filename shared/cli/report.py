"""`license-guard report html`: the licensing health page from a snapshot file or a live scan.

The history behind the trends and the "change since last night" comes from a directory of
nightly summary JSON files (``--history DIR``) or from the reports container the nightly
reconciliation keeps them in (``--from-storage``, with the app's ``AzureWebJobsStorage``).
``SKU_PRICES`` (the app setting's format, ``PART=PRICE,...``) adds the cost columns.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shared.cli.command import Command
from shared.cli.env import cli_environment
from shared.cli.files import load_tenant, output
from shared.cli.live_runner import LiveError, run_scan, storage_error_text
from shared.cli.progress import Progress
from shared.platform.setting_values import parse_sku_prices as sku_prices
from shared.platform.settings import StorageConnection
from shared.ports.directory import Directory
from shared.render.health_model import ROWS_PER_CODE, HealthReport
from shared.render.health_sources import report_from_snapshot
from shared.render.history import HistoryError, load_history_blobs, load_history_dir

EXIT_OK = 0


def _html_flags(cmd: argparse.ArgumentParser) -> None:
    source = cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--snapshot", metavar="FILE", help="tenant snapshot JSON")
    source.add_argument("--live", action="store_true", help="scan the live tenant")
    history = cmd.add_mutually_exclusive_group()
    history.add_argument(
        "--history", metavar="DIR", help="a directory of nightly summary JSON files (trends)"
    )
    history.add_argument(
        "--from-storage",
        action="store_true",
        help="the nightly history in the reports container (AzureWebJobsStorage)",
    )
    cmd.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    cmd.add_argument(
        "--rows-per-code",
        type=int,
        default=ROWS_PER_CODE,
        metavar="N",
        help=f"finding rows kept per code and migration rows per kind (default {ROWS_PER_CODE})",
    )


def _history(args: argparse.Namespace, env: Mapping[str, str]) -> list[dict[str, Any]]:
    try:
        if args.history:
            found = load_history_dir(args.history)
            if found.skipped:
                print(
                    f"license-guard: note: --history: skipped {len(found.skipped)} JSON file(s) "
                    f"under {args.history} that are not nightly summaries",
                    file=sys.stderr,
                )
            return found.records
        if args.from_storage:
            from azure.core.exceptions import AzureError  # noqa: PLC0415 - storage only when asked

            from shared.bootstrap import reports_blob_store  # noqa: PLC0415 - likewise

            try:
                storage = StorageConnection.from_env(env)
            except (LookupError, ValueError) as exc:
                raise LiveError(
                    f"--from-storage needs AzureWebJobsStorage (or its identity form): {exc}"
                ) from None
            try:
                return load_history_blobs(reports_blob_store(storage))
            except AzureError as exc:
                raise LiveError(f"storage: {storage_error_text(exc)}") from None
    except HistoryError as exc:
        raise LiveError(str(exc)) from None
    return []


def _prices(env: Mapping[str, str]) -> dict[str, float]:
    text = (env.get("SKU_PRICES") or "").strip()
    try:
        return sku_prices(text) if text else {}
    except ValueError as exc:
        raise LiveError(f"SKU_PRICES: {exc}") from None


def run_html(args: argparse.Namespace) -> int:
    if args.rows_per_code < 1:
        raise LiveError("--rows-per-code must be at least 1")
    now = datetime.now(UTC)
    env = cli_environment()  # local.settings.json, then the environment, as every live command
    history = _history(args, env)
    prices = _prices(env)
    with output(args.out, binary=False) as out:  # a bad --out is named before a long scan
        report = _report(args, now, history, prices)
        _write(report, args.out, out)
    return EXIT_OK


def _report(
    args: argparse.Namespace,
    now: datetime,
    history: list[dict[str, Any]],
    prices: dict[str, float],
) -> HealthReport:
    if args.snapshot:
        return report_from_snapshot(
            load_tenant(args.snapshot),
            source=Path(args.snapshot).name,
            generated_at=now.isoformat(timespec="seconds"),
            history=history,
            prices=prices,
            rows_per_code=args.rows_per_code,
        )
    from shared.service.reconcile.health_report import live_report  # noqa: PLC0415

    async def work(directory: Directory, progress: Progress) -> HealthReport:
        return await live_report(
            directory,
            now=now,
            history=history,
            prices=prices,
            rows_per_code=args.rows_per_code,
            progress=progress,
        )

    return run_scan(args, work)


HTML = Command(
    "html",
    help="the licensing health page: one self-contained HTML file",
    description=(
        "Render the licensing health page (health at a glance, seats per product, trends, "
        "findings, licensing groups, migration) as one self-contained HTML file: inline "
        "CSS and SVG, no external requests, tables capped to the first rows per code."
    ),
    run=run_html,
    flags=_html_flags,
    live=True,
)


def _write(report: HealthReport, name: str, out: IO[str]) -> None:
    from shared.render.health_page import render_health_page  # noqa: PLC0415 - jinja2 when used

    html = render_health_page(report)
    out.write(html)
    users = f"{report.users_scanned:,} user" + ("" if report.users_scanned == 1 else "s")
    print(f"{name}: {len(html.encode('utf-8')):,} bytes, {users}")
