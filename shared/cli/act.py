"""`license-guard reprocess`: an admin acts from the command line, with the service's safety.

`--user UPN|ID ...` or `--group GROUP` (its members in error or waiting for the group's
license). Honours the mode, the allow-list, the kill switch and the brake exactly as the
service's own writes (see `shared.service.manual_reprocess`); `--dry-run` writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

import orjson

from shared.cli.command import Command
from shared.cli.live_runner import LiveError, run_service_job
from shared.cli.options import add_format_option
from shared.render.terminal_text import printable_lines

if TYPE_CHECKING:
    from shared.service.services import Services

EXIT_OK = 0
EXIT_NOT_DONE = 1


def _reprocess_flags(cmd: argparse.ArgumentParser) -> None:
    who = cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", nargs="+", metavar="UPN|ID", help="users by UPN or object id")
    who.add_argument("--group", metavar="GROUP", help="a licensed group by id or display name")
    cmd.add_argument("--dry-run", action="store_true", help="write nothing; say what would happen")
    add_format_option(cmd, "table", "json")


def run_reprocess(args: argparse.Namespace) -> int:
    from shared.service.manual_reprocess import (  # noqa: PLC0415
        BLOCKED,
        UNKNOWN,
        ReprocessFailed,
        UnknownGroup,
        manual_reprocess,
    )

    async def work(svc: Services) -> Any:
        return await manual_reprocess(svc, args.user or (), args.group, dry_run=args.dry_run)

    try:
        outcomes = run_service_job(args, work)
    except UnknownGroup as exc:
        raise LiveError(str(exc)) from None
    except ReprocessFailed as exc:
        raise LiveError(failed_text(exc.user, exc.error, [o.user for o in exc.done])) from None
    write_outcomes(outcomes, args.format, args.dry_run)
    bad = {BLOCKED, UNKNOWN}
    return EXIT_NOT_DONE if any(o.status in bad for o in outcomes) else EXIT_OK


REPROCESS = Command(
    "reprocess",
    help="reprocess users' group-based licenses now (mode, allow-list, kill switch, brake)",
    description=(
        "Ask Entra to reprocess the group-based licenses of the given users, or of a "
        "group's members in error or waiting for its license, for the causes a reprocess "
        "can clear. Writes only in act mode, with WRITES_DISABLED off and the user's "
        "groups allowed by ACT_GROUP_ALLOWLIST; calls go through the service's brake. "
        "Uses the app's settings (AzureWebJobsStorage for the ledger and the brake)."
    ),
    epilog=(
        "exit status: 0 every user reprocessed (or would be, with --dry-run) or had "
        "nothing to reprocess, 1 some user was not allowed or not found, 2 bad input or I/O"
    ),
    run=run_reprocess,
    flags=_reprocess_flags,
    live=True,
)


SIGN_IN_NEEDS = (
    "reprocessing needs the License Administrator role (or User Administrator, or Directory "
    "Writers) for a sign-in, User.ReadWrite.All for an app; a user in a restricted management "
    "administrative unit only that unit's administrators may change"
)
"""What Graph asks of the caller of reprocessLicenseAssignment (its Permissions section)."""
NAMED = 20
"""Users named in the line about the ones done before a failure; the rest are counted."""


def failed_text(user: str, error: Any, done: list[str]) -> str:
    """The one line for a reprocess Graph refused or failed part way (exit 2): the write
    that failed, what a refusal needs, and who was reprocessed before it."""
    shown = f"{error.status} {error.code}: {str(error).split(': ', 1)[-1]}"
    if error.status == 403:
        text = f"Graph refused to reprocess {user} ({shown}): {SIGN_IN_NEEDS}"
    elif error.status == 401:
        text = f"Graph refused to reprocess {user} ({shown})"
    else:
        text = f"the reprocess of {user} failed ({shown}); running the command again is harmless"
    if not done:
        return f"{text}; no user was reprocessed"
    named = ", ".join(done[:NAMED]) + (
        f" and {len(done) - NAMED} more" if len(done) > NAMED else ""
    )
    return f"{text}; reprocessed (or queued for the app's worker) before it: {named}"


def write_outcomes(outcomes: Any, fmt: str, dry_run: bool, out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    counts = Counter(o.status for o in outcomes)
    if fmt == "json":
        doc = {
            "dryRun": dry_run,
            "summary": dict(counts),
            "users": [
                {
                    "user": o.user,
                    "status": o.status,
                    "detail": o.detail,
                    "findings": [
                        {"code": f.code, "message": f.message, "groupId": f.group_id}
                        for f in o.findings
                    ],
                }
                for o in outcomes
            ],
        }
        stream.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    head = "DRY RUN (nothing written): " if dry_run else ""
    listed = ", ".join(f"{n} {status}" for status, n in counts.most_common()) or "no users"
    lines = [f"{head}{len(outcomes)} user(s): {listed}"]
    for o in outcomes:
        lines.append(f"  {o.status}: {o.user} ({o.detail})")
        for finding in o.findings:
            lines.append(f"      {finding.severity.upper():<7} {finding.code}: {finding.message}")
    stream.write(printable_lines(lines) + "\n")
