"""Just enough Bicep reading for the cross-check tests: no compiler can be installed here, so the
tests read the templates as text. Handles what our templates use: `//` comments, `param`
declarations with or without defaults, brace-delimited blocks and one-key-per-line objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

_COMMENT = re.compile(r"(^|\s)//.*$", re.MULTILINE)
_PARAM = re.compile(r"^param\s+(\w+)\s+(\w+)(?:\s*=\s*(.+))?$", re.MULTILINE)
_KEY = re.compile(r"^\s*('?[\w.-]+'?)\s*:\s*(.*?)\s*$")


def read(relative: str) -> str:
    """A template's text without `//` comments (`https://` inside strings is kept)."""
    return _COMMENT.sub(r"\1", (INFRA / relative).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None


def params(text: str) -> dict[str, Param]:
    found = {}
    for name, kind, default in _PARAM.findall(text):
        found[name] = Param(name, kind, default.strip() or None)
    return found


def block(text: str, start: int) -> str:
    """The text between the first `{` or `[` at or after `start` and its matching closer."""
    opening = min(i for i in (text.find("{", start), text.find("[", start)) if i >= 0)
    pairs = {"{": "}", "[": "]"}
    stack = []
    for index in range(opening, len(text)):
        char = text[index]
        if char in pairs:
            stack.append(pairs[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return text[opening + 1 : index]
    raise ValueError("unbalanced braces")


def after(text: str, pattern: str) -> str:
    """The block that follows the first match of regex `pattern`."""
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not found"
    return block(text, match.end())


def top_level_keys(body: str) -> dict[str, str]:
    """`key: value` pairs at the outermost level of an object body (nested blocks skipped)."""
    keys: dict[str, str] = {}
    depth = 0
    for line in body.splitlines():
        if depth == 0 and (match := _KEY.match(line)):
            keys[match.group(1).strip("'")] = match.group(2)
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return keys


def string_list(body: str) -> list[str]:
    """The items of a one-string-per-line array body."""
    return re.findall(r"^\s*'([^']*)'\s*$", body, re.MULTILINE)


def resources(text: str) -> dict[str, tuple[str, str]]:
    """Symbolic name -> (type@version, the text after `=`) for each top-level resource."""
    found = {}
    for match in re.finditer(r"^resource\s+(\w+)\s+'([^']+)'\s*(existing\s*)?=", text, re.M):
        found[match.group(1)] = (match.group(2), text[match.end() : match.end() + 4000])
    return found


def modules(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Module symbol -> (path, its params object's top-level keys)."""
    found = {}
    for match in re.finditer(r"^module\s+(\w+)\s+'([^']+)'\s*=", text, re.MULTILINE):
        body = block(text, match.end())
        params_body = after(body, r"^\s*params\s*:")
        found[match.group(1)] = (match.group(2), top_level_keys(params_body))
    return found


_DECORATOR = re.compile(r"^@(\w+)\((.*)\)\s*$")


def param_decorators(text: str) -> dict[str, dict[str, str]]:
    """Param name -> its one-line decorators (`@minValue(0)` -> {"minValue": "0"})."""
    found: dict[str, dict[str, str]] = {}
    pending: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if match := _DECORATOR.match(stripped):
            pending[match.group(1)] = match.group(2)
        elif match := _PARAM.match(stripped):
            found[match.group(1)] = pending
            pending = {}
        elif stripped:
            pending = {}
    return found
