"""Where a command's input and output go: a snapshot file (its warnings on standard error), and
`--out FILE` or standard output (UTF-8 text without newline translation, or bytes; a CSV as
UTF-8 bytes whatever the console's code page, since it starts with the UTF-8 BOM). A
`--out` file appears only whole: a command that fails or is interrupted midway leaves the
file that was there. A reader of standard output that stops early (`| head -1`) ends the output,
not the exit status: a whatif at risk still exits 1.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson

from shared.adapters.snapshot import load_snapshot
from shared.core.model import Tenant
from shared.render.csvsafe import utf8_text
from shared.render.terminal_text import printable

_TEXT: dict[str, Any] = {"encoding": "utf-8", "newline": ""}


@contextmanager
def _whole_file(path: str) -> Iterator[str]:
    """Where to write `path`: a file beside it, put in its place only when the command
    succeeds. `snapshot --out tenant.json` streams for minutes: a Graph error or Ctrl-C midway
    left a truncated JSON over the last good snapshot. A device or pipe (`/dev/null`) is
    written as it is."""
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        kind = None
    if kind is not None and not stat.S_ISREG(kind):
        yield path
        return
    if kind is not None and not os.access(path, os.W_OK):
        raise PermissionError(13, "Permission denied", path)
    # beside the file a link points to: replacing the link would leave its target as it was
    head, name = os.path.split(os.path.realpath(path))
    partial = os.path.join(head, f".{name}.{os.getpid()}.partial")
    try:
        open(partial, "xb").close()
    except OSError as exc:  # the error names the --out path, not the partial file
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        yield partial
        if kind is not None:
            shutil.copymode(path, partial)
        os.replace(partial, os.path.join(head, name))
    except BaseException:
        os.unlink(partial)
        raise


@contextmanager
def output(path: str | None, *, binary: bool) -> Iterator[Any]:
    """The --out file, or standard output (its byte buffer for binary output)."""
    if path:
        with (
            _whole_file(path) as written,
            open(written, "wb" if binary else "w", **({} if binary else _TEXT)) as handle,
        ):
            yield handle
    else:
        try:
            yield sys.stdout.buffer if binary else sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:  # the rest is not written; the command's exit status stands
            stop_writing_to_the_closed_pipe()


def stop_writing_to_the_closed_pipe() -> None:
    """The reader of standard output has gone (`license-guard whatif ... | head -1`): what is
    left for it goes to the null device, so the interpreter's last flush does not fail again
    (exit 120 and "Exception ignored" on standard error)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError):  # not a file (a test's capture): nothing is flushed at exit
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


@contextmanager
def csv_output(path: str | None) -> Iterator[IO[str]]:
    """The --out file, or standard output, for a CSV (`csvsafe.write_rows`): UTF-8 text."""
    with output(path, binary=True) as raw, utf8_text(raw) as text:
        yield text


def load_tenant(path: str) -> Tenant:
    """The snapshot's tenant; its warnings go to standard error."""
    loaded = load_snapshot(path)
    for warning in loaded.warnings:
        print(f"license-guard: warning: {printable(warning)}", file=sys.stderr)
    return loaded.tenant


def write_json(document: Any, path: str | None) -> None:
    with output(path, binary=True) as out:
        out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def write_text(text: str, path: str | None) -> None:
    with output(path, binary=False) as out:
        out.write(text)
