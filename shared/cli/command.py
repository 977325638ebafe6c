"""One `license-guard` command as data (name, help, description, epilog, its own flags, what
runs it) and the one function that adds any of them to the parser.

Every command opens and closes the same way: `add_parser` with its texts, its own flags, the
live-tenant flags last for the commands that read Graph (`live=True`), and `func`, which
`main` runs. `shared.cli.parser` lists the commands in their `--help` order.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.cli.options import add_graph_options


def no_flags(cmd: argparse.ArgumentParser) -> None:
    """A command without flags of its own."""


@dataclass(frozen=True)
class Command:
    """A command of `license-guard`; `flags` adds the command's own flags, in `--help` order."""

    name: str
    help: str
    description: str
    run: Callable[[argparse.Namespace], int]
    flags: Callable[[argparse.ArgumentParser], None] = no_flags
    epilog: str | None = None
    live: bool = False

    def add_to(self, commands: Any) -> None:
        """Add the command to `commands` (what `add_subparsers` returned)."""
        cmd = commands.add_parser(
            self.name, help=self.help, description=self.description, epilog=self.epilog
        )
        self.flags(cmd)
        if self.live:
            add_graph_options(cmd)
        cmd.set_defaults(func=self.run)
