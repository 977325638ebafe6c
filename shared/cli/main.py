"""The `license-guard` command line: the admin's way to run the same code paths by hand.

Commands: `evaluate` (a snapshot's effective licenses and findings), `whatif` (planned
membership and plan changes on a snapshot), `diff` (drift between two snapshots) and
`report migration` (the direct -> group migration plan); against a live tenant
(`shared.cli.live`): `snapshot`, `reconcile [--dry-run]` and `report paths`; and `preflight`
(`shared.cli.preflight`: is a deployment ready?).

Exit status: 0 success, 1 a risk was found (whatif: data loss or predicted assignment errors;
diff: data loss), 2 bad input or I/O (one line on stderr, no traceback), 130 Ctrl-C (one line,
as a shell reports an interrupted command). A reader of standard output that stops early
(`| head -1`) leaves the status as it is (no traceback), except for a command it stops while
the command is still printing its checklist or plan itself: 141, as a shell reports a command
ended by SIGPIPE. `--version`.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from shared.adapters.snapshot import SnapshotError
from shared.catalog.capabilities import CapabilityMapError
from shared.catalog.plan_conflicts import PlanConflictsError
from shared.cli.env import LocalSettingsError
from shared.cli.files import stop_writing_to_the_closed_pipe
from shared.cli.live_runner import LiveError
from shared.cli.parser import build_parser, version
from shared.cli.snapshot_commands import EXIT_BAD_INPUT, EXIT_DATA_LOSS, EXIT_OK
from shared.core.references import BadReference

EXIT_INTERRUPTED = 128 + 2  # SIGINT: what a shell reports for a command stopped by Ctrl-C
EXIT_READER_GONE = 128 + 13  # SIGPIPE: what a shell reports for a command ended by a closed pipe

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DATA_LOSS",
    "EXIT_OK",
    "EXIT_READER_GONE",
    "io_error_text",
    "main",
    "version",
]


def io_error_text(exc: OSError) -> str:
    """One line for a file that cannot be read or written: the path and the reason."""
    reason = exc.strerror or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _escape_what_the_console_cannot_show() -> None:
    """A redirect or pipe on Windows writes in the ANSI code page (cp1252): a display name
    outside it stopped a table with UnicodeEncodeError. It is written escaped (`\\u015e`), as
    Python writes standard error; UTF-8 output is unchanged."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _escape_what_the_console_cannot_show()
    status = _run(build_parser().parse_args(argv))
    try:
        sys.stdout.flush()  # what is still buffered meets a closed pipe here, not at exit
    except BrokenPipeError:
        stop_writing_to_the_closed_pipe()
    return status


def _run(args: argparse.Namespace) -> int:
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
    except BrokenPipeError:  # midway: the status the command would have returned is unknown
        stop_writing_to_the_closed_pipe()
        return EXIT_READER_GONE
    except KeyboardInterrupt:
        print("license-guard: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"license-guard: error: {io_error_text(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
