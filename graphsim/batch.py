"""POST /$batch: up to 20 requests, `dependsOn` sequencing (424 for dependents of failures),
each item dispatched (and throttled) individually like a top-level request.

Item shape, from Microsoft Learn "Combine multiple HTTP requests using JSON batching"
(learn.microsoft.com/graph/json-batching): every item carries the `headers` the server returned
(`Cache-Control: no-cache`, `x-ms-resource-unit`, `Content-Type`; OData payloads also
`OData-Version: 4.0` and the full OData media type); a 204 item carries `"body": null` (the
page's PATCH example), other items without content (a 202, a 302) carry no `body` at all.

Order: Graph answers the items in any order ("may not match the order of the requests"), so a
client matches them by `id`. graphsim never answers two or more items in the request order:
a shuffle drawn from the simulator's seed and the batch's number (reversed when the draw
happens to be the request order), so a seed always gives the same orders.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from .errors import GraphError, bad_request, error_body
from .wire import Req, Resp

Obj = dict[str, Any]
MAX_REQUESTS = 20
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


def _invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _item_request(outer: Req, item: Obj) -> Req:
    url = str(item.get("url", ""))
    parts = urlsplit(url)
    path = unquote(parts.path)  # as the HTTP server decodes an outer request's path
    if not path.startswith("/"):
        path = "/" + path
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    body = item.get("body")
    raw = b""
    if body is not None:
        if "content-type" not in headers:
            raise _invalid(
                f"Content-Type header is required for request '{item.get('id')}' with a body."
            )
        raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    return Req(
        method=str(item.get("method", "GET")).upper(),
        path=path,
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=raw,
        base_url=outer.base_url,
        app_id=outer.app_id,
        in_batch=True,
        roles=outer.roles,
    )


def answer_order(ids: Sequence[str], rng: random.Random) -> list[str]:
    """The order the items are answered in: shuffled, never the request order (2+ items)."""
    order = list(ids)
    rng.shuffle(order)
    return order[::-1] if order == list(ids) else order


async def run_batch(
    outer: Req,
    dispatch: Callable[[Req], Awaitable[Resp]],
    rng: random.Random | None = None,
) -> Resp:
    payload = outer.json()
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _invalid("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise bad_request(
            f"The number of batch requests ({len(requests)}) exceeded the maximum allowed "
            f"({MAX_REQUESTS}).",
            code="BadRequest",
        )
    by_id: dict[str, Obj] = {}
    for item in requests:
        if (
            not isinstance(item, dict)
            or "id" not in item
            or "url" not in item
            or "method" not in item
        ):
            raise _invalid("Each batch request needs id, method and url.")
        rid = str(item["id"])
        if rid in by_id:
            raise _invalid(f"Batch request id '{rid}' is duplicated.")
        by_id[rid] = item
    for rid, item in by_id.items():
        for dep in item.get("dependsOn") or []:
            if str(dep) not in by_id:
                raise _invalid(f"Request '{rid}' depends on unknown request '{dep}'.")
    prepared = {rid: _item_request(outer, item) for rid, item in by_id.items()}
    results: dict[str, Resp] = {}
    visiting: set[str] = set()

    async def run(rid: str) -> Resp:
        if rid in results:
            return results[rid]
        if rid in visiting:
            raise _invalid("dependsOn contains a cycle.")
        visiting.add(rid)
        failed = False
        for dep in by_id[rid].get("dependsOn") or []:
            dep_resp = await run(str(dep))
            failed = failed or not (200 <= dep_resp.status < 300)
        if failed:
            resp = Resp(424, error_body("FailedDependency", "A dependent request failed."))
        else:
            resp = await dispatch(prepared[rid])
        results[rid] = resp
        return resp

    for rid in by_id:
        await run(rid)
    order = answer_order(list(by_id), rng or random.Random(0))  # noqa: S311 - simulation
    return Resp(200, {"responses": [item_response(rid, results[rid]) for rid in order]})


def item_response(rid: str, resp: Resp) -> Obj:
    """One entry of `responses`: id, status, the item's headers and (if any) its body."""
    headers = {"Cache-Control": "no-cache", **resp.headers}
    out: Obj = {"id": rid, "status": resp.status, "headers": headers}
    if resp.body is not None:
        if isinstance(resp.body, dict) and "@odata.context" in resp.body:
            headers.setdefault("OData-Version", "4.0")
            headers.setdefault("Content-Type", ODATA_JSON)
        headers.setdefault("Content-Type", "application/json")
        out["body"] = resp.body
    elif resp.status == 204:
        out["body"] = None
    return out
