"""Flags several `license-guard` commands share, declared once so that their names, defaults
and help read the same in every command that takes them.
"""

from __future__ import annotations

import argparse

OUT_HELP = "write to FILE instead of standard output"


def add_graph_options(cmd: argparse.ArgumentParser) -> None:
    """`--graph-base-url`, `--token` and `--quiet`: the commands that read a live tenant."""
    cmd.add_argument(
        "--graph-base-url",
        metavar="URL",
        help="Graph base URL (default: GRAPH_BASE_URL, else https://graph.microsoft.com/v1.0)",
    )
    cmd.add_argument(
        "--token",
        metavar="TOKEN",
        help="a static bearer token (graphsim; default: GRAPH_STATIC_TOKEN, else az login)",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress on standard error")


def add_format_option(cmd: argparse.ArgumentParser, *choices: str, text: str = "") -> None:
    """`--format CHOICE`, the first choice the default; the help names them ("table (default)
    or json") unless `text` says more.
    """
    named = " or ".join([f"{choices[0]} (default)", *choices[1:]])
    cmd.add_argument("--format", choices=choices, default=choices[0], help=text or named)


def add_out_option(cmd: argparse.ArgumentParser) -> None:
    """`--out FILE`: the report goes to FILE instead of standard output."""
    cmd.add_argument("--out", metavar="FILE", help=OUT_HELP)


def add_snapshot_option(cmd: argparse.ArgumentParser, text: str = "tenant snapshot JSON") -> None:
    """`--snapshot FILE` (required): the commands that read a tenant snapshot file."""
    cmd.add_argument("--snapshot", required=True, metavar="FILE", help=text)
