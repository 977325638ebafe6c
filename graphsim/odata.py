"""The OData query subset Graph's directory endpoints accept: $select, $top, $skiptoken, $filter.

Only the filter forms the licensing watcher (and its tests) use are understood; anything else
is answered the way Graph answers an unsupported query (400).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from .clock import parse_iso
from .errors import GraphError, bad_request, unsupported_query

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

MAX_TOP = 999
DEFAULT_TOP = 100

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ANY_EMPTY = re.compile(r"assignedLicenses/any\(\)", re.I)
_ANY_SKU = re.compile(
    rf"assignedLicenses/any\((\w+):\s*\1/skuId\s+eq\s+'?({_GUID})'?\)",
    re.I,
)
_COUNT = re.compile(r"(\w+)/\$count\s+(eq|ne|gt|ge|lt|le)\s+(\d+)", re.I)
_IN = re.compile(r"(\w+)\s+in\s+\((.*)\)", re.I)
_CMP = re.compile(r"([\w/]+)\s+(eq|ne|ge|gt|le|lt)\s+(.+)", re.I)
_STARTSWITH = re.compile(r"startswith\((\w+)\s*,\s*'((?:[^']|'')*)'\)", re.I)
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class Query:
    """Parsed system query options of one request."""

    select: tuple[str, ...] | None
    top: int | None
    skiptoken: str | None
    filter: str | None
    count: bool
    expand: str | None
    raw: Mapping[str, str]


def parse_query(params: Mapping[str, str]) -> Query:
    """Read $-options (with or without the `$`, as Graph tolerates)."""

    def get(name: str) -> str | None:
        for key in (f"${name}", name):
            if key in params:
                return params[key]
        for key, value in params.items():
            if key.lower() in (f"${name}", name):
                return value
        return None

    select_raw = get("select")
    select = tuple(s.strip() for s in select_raw.split(",") if s.strip()) if select_raw else None
    top_raw = get("top")
    top: int | None = None
    if top_raw is not None:
        try:
            top = int(top_raw)
        except ValueError:
            raise bad_request(f"Invalid value '{top_raw}' for query parameter $top.") from None
        if top < 1 or top > MAX_TOP:
            raise bad_request(
                f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive."
            )
    count_raw = get("count")
    return Query(
        select=select,
        top=top,
        skiptoken=get("skiptoken"),
        filter=get("filter"),
        count=(count_raw or "").lower() == "true",
        expand=get("expand"),
        raw=params,
    )


def encode_token(data: Mapping[str, Any]) -> str:
    """Opaque, URL-safe token (base64url of compact JSON) used for $skiptoken and $deltatoken."""
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def project(obj: Obj, select: tuple[str, ...] | None, default: tuple[str, ...] | None) -> Obj:
    """Apply $select (or the entity's default property set); `id` is always returned."""
    keys = select if select is not None else default
    if keys is None:
        return {k: v for k, v in obj.items() if not k.startswith("_")}
    out: Obj = {}
    if "@odata.type" in obj:
        out["@odata.type"] = obj["@odata.type"]
    out["id"] = obj.get("id")
    for key in keys:  # Graph returns unset selected and default properties as null
        out[key] = obj.get(key)
    return out


def next_link(base_url: str, path: str, params: Mapping[str, str], skiptoken: str) -> str:
    """Full URL of the next page: the original options plus a fresh $skiptoken."""
    kept = {k: v for k, v in params.items() if k.lower() not in ("$skiptoken", "skiptoken")}
    kept["$skiptoken"] = skiptoken
    safe = "$,()/':"
    return f"{base_url}{path}?{urlencode(kept, safe=safe)}"


def context_url(base_url: str, entity_set: str, select: tuple[str, ...] | None) -> str:
    suffix = f"({','.join(select)})" if select else ""
    return f"{base_url}/$metadata#{entity_set}{suffix}"


@dataclass(frozen=True)
class CompiledFilter:
    predicate: Predicate
    advanced: bool  # needs ConsistencyLevel: eventual + $count=true


def _split_and(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = False
    start = 0
    i = 0
    lower = text.lower()
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and lower.startswith(" and ", i):
            parts.append(text[start:i].strip())
            i += 5
            start = i
            continue
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low == "null":
        return None
    if re.fullmatch(_GUID, text):
        return text
    if _DATETIME_RE.fullmatch(text):
        return parse_iso(text)
    try:
        return int(text)
    except ValueError:
        pass
    raise bad_request(f"Invalid filter clause: unrecognised literal {text!r}.")


def _get(obj: Obj, path: str, computed: Mapping[str, Callable[[Obj], Any]]) -> Any:
    if path in computed:
        return computed[path](obj)
    value: Any = obj
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}


def _clause(
    text: str, allowed: frozenset[str], computed: Mapping[str, Callable[[Obj], Any]]
) -> tuple[Predicate, bool]:
    if _ANY_EMPTY.fullmatch(text) and "assignedLicenses" in allowed:
        return (lambda o: bool(o.get("assignedLicenses"))), False
    m = _ANY_SKU.fullmatch(text)
    if m and "assignedLicenses" in allowed:
        sku = m.group(2).lower()
        return (
            lambda o: any(
                str(a.get("skuId", "")).lower() == sku for a in o.get("assignedLicenses") or ()
            )
        ), False
    m = _COUNT.fullmatch(text)
    if m and m.group(1) in allowed:
        prop, op, num = m.group(1), _OPS[m.group(2).lower()], int(m.group(3))
        return (lambda o: op(len(o.get(prop) or ()), num)), True
    m = _STARTSWITH.fullmatch(text)
    if m and m.group(1) in allowed:
        prop, prefix = m.group(1), m.group(2).replace("''", "'").lower()
        return (lambda o: str(o.get(prop) or "").lower().startswith(prefix)), False
    m = _IN.fullmatch(text)
    if m and m.group(1) in allowed:
        prop = m.group(1)
        values = {_literal(v) for v in re.findall(r"'(?:[^']|'')*'", m.group(2))}
        if prop == "id":
            lowered = {str(v).lower() for v in values}
            return (lambda o: str(o.get("id", "")).lower() in lowered), False
        return (lambda o: _get(o, prop, computed) in values), False
    m = _CMP.fullmatch(text)
    if m and m.group(1) in allowed:
        prop, opname, value = m.group(1), m.group(2).lower(), _literal(m.group(3))
        op = _OPS[opname]
        advanced = opname == "ne" or (value is None and opname != "eq")
        if isinstance(value, str) and prop == "id":
            low = value.lower()
            return (lambda o: op(str(o.get("id", "")).lower(), low)), advanced
        if hasattr(value, "tzinfo"):

            def dt_pred(o: Obj) -> bool:
                raw = _get(o, prop, computed)
                return raw is not None and op(parse_iso(str(raw)), value)

            return dt_pred, advanced
        return (lambda o: op(_get(o, prop, computed), value)), advanced
    raise unsupported_query()


def compile_filter(
    text: str,
    allowed: frozenset[str],
    computed: Mapping[str, Callable[[Obj], Any]] | None = None,
) -> CompiledFilter:
    """Compile an `and`-joined filter of supported clauses; unknown forms raise Graph's 400."""
    comp = computed or {}
    preds: list[Predicate] = []
    advanced = False
    for part in _split_and(text):
        stripped = part
        while stripped.startswith("(") and stripped.endswith(")") and _balanced(stripped[1:-1]):
            stripped = stripped[1:-1].strip()
        pred, adv = _clause(stripped, allowed, comp)
        preds.append(pred)
        advanced = advanced or adv
    if len(preds) == 1:
        return CompiledFilter(preds[0], advanced)
    return CompiledFilter(lambda o: all(p(o) for p in preds), advanced)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def is_eventual(headers: Mapping[str, str]) -> bool:
    """`ConsistencyLevel: eventual`, which advanced queries and `$count` need."""
    return headers.get("consistencylevel", "").lower() == "eventual"


def require_eventual(headers: Mapping[str, str]) -> None:
    """Without `ConsistencyLevel: eventual` Entra answers a count with 400 Request_BadRequest."""
    if not is_eventual(headers):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")


def require_advanced(headers: Mapping[str, str], query: Query) -> None:
    """Advanced queries need `ConsistencyLevel: eventual` and `$count=true`, as in Entra."""
    require_eventual(headers)
    if not query.count:
        raise unsupported_query()
