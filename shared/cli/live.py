"""`license-guard` commands that read a live tenant: `snapshot`, `reconcile`, `report paths`.

They run the service's own code paths (the `Directory` port, the reconciliation's page-by-page
scan) against `GRAPH_BASE_URL`: graphsim with a static token, or Microsoft Graph with the
signed-in identity (`az login`, through azure-identity's DefaultAzureCredential, for the
cloud GRAPH_BASE_URL names). The flags `--graph-base-url` and `--token` override the settings
for local use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import orjson

from shared.catalog.products import catalog
from shared.cli.command import Command
from shared.cli.files import csv_output, output
from shared.cli.live_runner import run_scan, run_service_job
from shared.cli.options import add_format_option, add_out_option
from shared.cli.progress import Progress
from shared.core.findings import finding_counts
from shared.ports.directory import USER_SELECT, Directory
from shared.ports.paging import FollowedLinks
from shared.render.csvsafe import csv_writer
from shared.render.evaluation import evaluation_json
from shared.render.findings import finding_json
from shared.render.findings_summary import summary_json, summary_lines
from shared.render.paths import path_rows, write_csv
from shared.render.terminal_text import printable_lines

if TYPE_CHECKING:
    from shared.service.reconcile.run_state import ReconcileResult
    from shared.service.services import Services

# The Graph SDK and the service (storage SDKs) are imported by the commands that use them:
# `evaluate` and the other snapshot commands share this parser and must not pay for them.

EXIT_OK = 0
EXIT_BAD_INPUT = 2


# --------------------------------------------------------------------------- snapshot


def run_snapshot(args: argparse.Namespace) -> int:
    async def work(directory: Directory, progress: Progress) -> int:
        with output(args.out, binary=True) as out:
            await write_snapshot(directory, out, progress)
        return EXIT_OK

    return run_scan(args, work)


def _snapshot_flags(cmd: argparse.ArgumentParser) -> None:
    add_out_option(cmd)
    add_format_option(cmd, "json")


SNAPSHOT = Command(
    "snapshot",
    help="read a live tenant into a snapshot file (the format evaluate reads)",
    description=(
        "Read subscribedSkus, licensed groups with their members, ALL users (with the "
        "licensing fields) and the organization from Graph, page by page, into one "
        "snapshot JSON file that `license-guard evaluate` reads."
    ),
    run=run_snapshot,
    flags=_snapshot_flags,
    live=True,
)


async def write_snapshot(
    directory: Any, out: IO[bytes], progress: Callable[[str, int, int | None], None] | None = None
) -> int:
    """Stream a snapshot: SKUs, licensed groups with members, users page by page, organization.
    Returns the number of users written."""
    from shared.adapters.world_document import snapshot_head  # noqa: PLC0415 - see the imports
    from shared.service.reconcile.scan import read_world  # noqa: PLC0415 - see the imports

    world = await read_world(directory, progress)
    skus, groups, organization = snapshot_head(world)
    out.write(b'{"subscribedSkus":' + orjson.dumps(skus) + b',"groups":[')
    for n, group in enumerate(groups):
        out.write((b"," if n else b"") + orjson.dumps(group))
    out.write(b'],"users":[')
    link: str | None = None
    followed = FollowedLinks()
    count = 0
    while True:
        users, link = await directory.users_page(link, select=USER_SELECT)
        link = followed.follow(link)  # a cycle (A -> B -> A) stops here
        for user in users:
            out.write((b"," if count else b"") + orjson.dumps(user))
            count += 1
        if progress:
            progress("users", count, world.user_count)
        if link is None:
            break
    out.write(b'],"organization":' + orjson.dumps(organization) + b"}\n")
    return count


# --------------------------------------------------------------------------- report paths


def run_paths(args: argparse.Namespace) -> int:
    async def work(directory: Directory, progress: Progress) -> int:
        opened = output(args.out, binary=True) if args.format == "json" else csv_output(args.out)
        with opened as out:
            await write_paths(directory, out, args.format, progress)
        return EXIT_OK

    return run_scan(args, work)


def _paths_flags(cmd: argparse.ArgumentParser) -> None:
    add_out_option(cmd)
    add_format_option(cmd, "csv", "json")


PATHS = Command(
    "paths",
    help="the assignment-path report from a live scan",
    description=(
        "Scan the live tenant page by page and write the assignment-path report: one row "
        "per user x SKU x path, the header `license-guard evaluate --format csv` uses."
    ),
    run=run_paths,
    flags=_paths_flags,
    live=True,
)


async def write_paths(
    directory: Any,
    out: IO[Any],
    fmt: str,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> None:
    """The assignment-path CSV (or the evaluation JSON) of a live scan, a page at a time."""
    from shared.service.reconcile.scan import (  # noqa: PLC0415
        evaluate_page,
        member_index,
        read_world,
        unlicensed_state_groups,
    )

    world = await read_world(directory, progress)
    index = member_index(world)
    names = catalog()
    link: str | None = None
    followed = FollowedLinks()
    done = 0
    if fmt == "json":
        out.write(b'{"users":[')
    else:  # the BOM and header once: a page may hold no users and still have a next link
        write_csv((), out)
    while True:
        users, link = await directory.users_page(link, select=USER_SELECT)
        link = followed.follow(link)  # a cycle (A -> B -> A) stops here
        unlicensed = await unlicensed_state_groups(directory, world, users)
        tenant, evaluation = evaluate_page(world, index, users, unlicensed)
        if fmt == "csv":
            csv_writer(out).writerows(path_rows(evaluation, tenant, names))
        else:
            for n, doc in enumerate(evaluation_json(evaluation, tenant)["users"]):
                out.write((b"," if done or n else b"") + orjson.dumps(doc))
        done += len(users)
        if progress:
            progress("users", done, world.user_count)
        if link is None:
            break
    if fmt == "json":
        from shared.service.nested import nested_group_findings  # noqa: PLC0415

        found = nested_group_findings(world)  # the groups' own findings, as the nightly's
        groups: list[dict[str, object]] = [
            {
                "id": c.id,
                "displayName": c.display_name,
                "findings": [finding_json(f) for f in found.get(c.id, ())],
            }
            for c in world.configs
        ]
        out.write(b'],"groups":' + orjson.dumps(groups) + b"}\n")


# --------------------------------------------------------------------------- reconcile


def run_reconcile(args: argparse.Namespace) -> int:
    from shared.service.reconcile.nightly import reconcile_nightly  # noqa: PLC0415
    from shared.service.reconcile.run_state import Options  # noqa: PLC0415

    async def work(svc: Services) -> ReconcileResult:
        progress = Progress(args.quiet)
        options = Options(
            dry_run=args.dry_run,
            force=True,
            prune_history=False,  # the retention settings are the app's: the timer prunes
            progress=progress,
        )
        try:
            return await reconcile_nightly(svc, svc.blobs, options)
        finally:
            progress.close()

    print_result(run_service_job(args, work), args.format)
    return EXIT_OK


def _reconcile_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--dry-run", action="store_true", help="write nothing; print what the run would do"
    )
    add_format_option(cmd, "table", "json")


RECONCILE = Command(
    "reconcile",
    help="run the nightly reconciliation now (or --dry-run: write nothing, show the plan)",
    description=(
        "Run the reconciliation the nightly timer runs: scan every user, reconcile the "
        "findings ledger, queue reprocesses the policy allows, write the reports to blob "
        "storage. Uses the app's settings (AzureWebJobsStorage, TENANT_ID, ...). With "
        "--dry-run nothing is written: no ledger, no messages, no blobs, no mail."
    ),
    run=run_reconcile,
    flags=_reconcile_flags,
    live=True,
)


def print_result(result: ReconcileResult, fmt: str, out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    if fmt == "json":
        doc = {
            "runId": result.run_id,
            "date": result.date,
            "status": result.status,
            "baseline": result.baseline,
            "users": result.users,
            "newFindings": result.new_findings,
            "resolvedFindings": result.resolved_findings,
            "reprocessQueued": result.queued,
            "wouldReprocess": result.would_reprocess,
            "reports": result.report_blobs,
            "planned": result.planned,
            "summary": result.summary.to_json() if result.summary else None,
            "newFindingsSummary": summary_json(finding_counts(result.new), _group_label(result)),
        }
        stream.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    head = "DRY RUN (nothing written): " if result.status == "dry-run" else ""
    lines = [
        f"{head}run {result.run_id} ({result.date}){' baseline' if result.baseline else ''}: "
        f"{result.users} user{'' if result.users == 1 else 's'}, {result.new_findings} new "
        f"finding(s), {result.resolved_findings} resolved, {result.queued} reprocess(es) queued, "
        f"{result.would_reprocess} would be reprocessed but are not allowed now"
    ]
    if result.status == "dry-run":
        for line in summary_lines(finding_counts(result.new), _group_label(result)):
            lines.append(line.replace("SUMMARY:", "SUMMARY of new findings:", 1))
        lines.append("PLAN")
    lines += [f"  {line}" for line in result.planned]
    lines += [f"  report: {name}" for name in result.report_blobs]
    stream.write(printable_lines(lines) + "\n")


def _group_label(result: ReconcileResult) -> Callable[[str], str]:
    return lambda group_id: result.group_names.get(group_id, group_id)
