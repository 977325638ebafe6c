"""One page of a collection, Graph style: `$top`, an opaque `$skiptoken` in `@odata.nextLink`
(none on the last page), and `@odata.count` on the first page when asked for.

A `$skiptoken` is refused (400 `Request_BadRequest`) after a tenant reset, and, when the tenant
sets `pageTokenLifetimeMinutes`, once it is older than that: 400 `Directory_ExpiredPageToken`,
the error Graph answers a directory page token with once it expired (Graph documents no
lifetime)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from .errors import GraphError, bad_request
from .odata import (
    DEFAULT_TOP,
    Query,
    context_url,
    decode_token,
    encode_token,
    is_eventual,
    next_link,
)
from .wire import Req, Resp

Obj = dict[str, Any]


class _Clock(Protocol):
    def now(self) -> datetime: ...


class PagedTenant(Protocol):
    """What paging needs of the tenant: its generation, clock and page-token lifetime."""

    @property
    def generation(self) -> str: ...
    @property
    def clock(self) -> _Clock: ...
    @property
    def page_token_lifetime(self) -> timedelta | None: ...


def _expired() -> GraphError:
    return GraphError(
        400,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )


def serve_page(
    req: Req,
    tenant: PagedTenant,
    entity_set: str,
    source: list[Any],
    view: Callable[[Any], Obj | None],
    query: Query,
    *,
    count: Callable[[], int] | None = None,
    max_top: int = 999,
) -> Resp:
    """Serve one page of `source`; the $skiptoken is the raw position in `source`."""
    top = min(query.top or DEFAULT_TOP, max_top)
    pos = 0
    generation = tenant.generation
    now = int(tenant.clock.now().timestamp())
    if query.skiptoken:
        tok = decode_token(query.skiptoken)
        if tok is None or tok.get("g") != generation or not isinstance(tok.get("p"), int):
            raise bad_request("Invalid $skiptoken value.", code="Request_BadRequest")
        lifetime = tenant.page_token_lifetime
        if lifetime is not None and now - int(tok.get("t", now)) > lifetime.total_seconds():
            raise _expired()
        pos = int(tok["p"])
    value: list[Obj] = []
    i = pos
    n = len(source)
    while i < n and len(value) < top:
        item = view(source[i])
        i += 1
        if item is not None:
            value.append(item)
    body: Obj = {"@odata.context": context_url(req.base_url, entity_set, query.select)}
    if count is not None and not query.skiptoken:
        body["@odata.count"] = count()
    # look ahead for the next match so the last page carries no nextLink
    while i < n and len(value) >= top:
        if view(source[i]) is not None:
            body["@odata.nextLink"] = next_link(
                req.base_url,
                req.path,
                req.params,
                encode_token({"p": i, "g": generation, "t": now}),
            )
            break
        i += 1
    body["value"] = value
    return Resp(200, body)


def empty_first_page(req: Req, tenant: PagedTenant, resp: Resp) -> Resp:
    """`resp`, a collection's first page, as Graph may answer it: no items, and a nextLink to
    the real first page (the fault `emptyFirstPages`). Anything else is left as it is."""
    first = not any(k.lower() in ("$skiptoken", "skiptoken") for k in req.params)
    if not first or resp.status != 200 or not isinstance(resp.body, dict):
        return resp
    if "value" not in resp.body:
        return resp
    now = int(tenant.clock.now().timestamp())
    token = encode_token({"p": 0, "g": tenant.generation, "t": now})
    link = next_link(req.base_url, req.path, req.params, token)
    return Resp(200, {**resp.body, "@odata.nextLink": link, "value": []}, resp.headers)


def stuck_page(req: Req, resp: Resp, *, kind: str = "stuck") -> Resp:
    """`resp`, a page asked by a nextLink, as a misbehaving server answers it: no items and a
    nextLink that never ends (faults `stuckPages`, `endlessPages`, `cyclingPages`): the URL it
    was asked by ("stuck"), that URL with `simPage` counting up ("endless"), or with `simPage`
    1 and 2 in turn ("cycling": A -> B -> A). Anything else is left as it is."""
    token = next(
        (v for k, v in req.params.items() if k.lower() in ("$skiptoken", "skiptoken")), None
    )
    if token is None or resp.status != 200 or not isinstance(resp.body, dict):
        return resp
    if "value" not in resp.body:
        return resp
    params = dict(req.params)
    if kind == "endless":
        params["simPage"] = str(int(params.get("simPage", "0")) + 1)
    elif kind == "cycling":
        params["simPage"] = "2" if params.get("simPage") == "1" else "1"
    link = next_link(req.base_url, req.path, params, token)
    body = {k: v for k, v in resp.body.items() if k != "@odata.deltaLink"}
    return Resp(200, {**body, "@odata.nextLink": link, "value": []}, resp.headers)


def wants_count(req: Req, query: Query) -> bool:
    """`$count=true` counts only with `ConsistencyLevel: eventual` (advanced queries)."""
    return query.count and is_eventual(req.headers)
