"""`GraphTransport`: how every Graph call is sent, paged, batched and retried (no endpoints).

Bulk reads keep the SDK's request builders, authentication and middleware (Graph's retry
handler honours Retry-After on 429/503/504) but skip its typed models: the raw body comes back
as bytes (`send_primitive_async(..., "bytes")`) and is parsed with orjson into plain dicts,
because the models cost seconds per 999-user page (graph-facts §9). `$batch` items answered
429/503/504 are re-sent here (the middleware retries whole requests, not batch items).
`GraphDirectory` (shared.adapters.graph) builds the endpoints on top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, Self

import httpx
import orjson
import structlog
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph_auth import credential_error
from shared.adapters.graph_delta import DELTA_PAGES_PER_GROUP
from shared.adapters.graph_errors import (
    ERROR_MAP,
    item_error,
    to_directory_error,
    transport_error,
)
from shared.adapters.graph_paths import entity_path
from shared.ports.directory import JSON, DirectoryError
from shared.ports.paging import FollowedLinks

PAGE_SIZE = 999
"""$top maximum for users, groups and group members (graph-facts §6.4)."""
BATCH_LIMIT = 20
"""Graph's maximum number of requests in one JSON batch (graph-facts §6.3)."""
RETRYABLE_ITEM_STATUS = frozenset({429, 503, 504})
TRANSPORT_ATTEMPTS = 4
TRANSPORT_BACKOFF = 0.5
"""Seconds before the first retry of a dropped connection; doubled each time (0.5, 1, 2)."""
WRITE_THROTTLE_ATTEMPTS = 4
"""Tries of a throttled (429) write: Graph did not carry it out, so it is repeated."""

log = structlog.get_logger(__name__)


class _UrlBuilder(Protocol):
    def to_get_request_information(self, request_configuration: Any = None) -> RequestInformation:
        """A request builder rebuilt on a nextLink/deltaLink URL (`.with_url(url)`)."""
        ...


def _plain(obj: JSON) -> JSON:
    """Drop OData control annotations (`@odata.context`, ...) from a single entity."""
    return {k: v for k, v in obj.items() if not k.startswith("@odata.") or k == "@odata.type"}


def count_body(raw: bytes | None) -> int:
    """The number in a text/plain `$count` answer. Microsoft services may start a UTF-8 text
    body with a byte-order mark (OData leaves it allowed), which `int()` refuses: dropped."""
    try:
        return int((raw or b"").decode("utf-8-sig").strip())
    except (UnicodeDecodeError, ValueError):
        raise DirectoryError(502, "UnexpectedBody", "$count answer is not a number") from None


def json_object(raw: bytes) -> JSON:
    """Graph's JSON object answer; a 502 `DirectoryError` for anything else, such as the HTML
    page a proxy or a wrong GRAPH_BASE_URL answers 200 with (retried later by a queue, one
    line from the CLI: never a traceback)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        kind = "an HTML page" if raw.lstrip()[:1] == b"<" else f"{len(raw)} bytes"
        raise DirectoryError(
            502,
            "UnexpectedBody",
            f"the answer is not JSON but {kind}: is GRAPH_BASE_URL Microsoft Graph, "
            "or is a proxy answering for it?",
        ) from None
    if not isinstance(parsed, dict):
        raise DirectoryError(502, "UnexpectedBody", "Graph returned a non-object body")
    return parsed


def _items_left(failed: Sequence[DirectoryError], resends: int, wait: float) -> DirectoryError:
    """Batch items still failing after the re-sends: a 429 when any was throttled (the queue
    worker sends its message again for after Retry-After), else the status they failed with
    (503: Graph unavailable), never an outage called throttling."""
    throttled = [e for e in failed if e.status == 429]
    first = (throttled or list(failed))[0]
    state = "throttled" if throttled else f"unavailable ({first.status})"
    return DirectoryError(
        first.status,
        first.code or ("TooManyRequests" if throttled else "ServiceUnavailable"),
        f"{len(failed)} batch item(s) still {state} after {resends} re-send(s)",
        wait,
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class GraphTransport:
    """Sending, paging and batching for `GraphDirectory`. Close with `aclose()`.

    `page_size` is the `$top` of collection reads (999, Graph's maximum, unless a test wants
    small pages); a `/groups/delta` round ends with an error past `delta_pages_per_group` pages
    per group of its partition (`graph_delta.DeltaPages`). Batches: at most 20 requests each,
    up to `batch_concurrency` in flight.
    Items answered 429/503/504 inside a batch are re-sent by us after their Retry-After (the SDK
    middleware retries whole requests, not batch items), at most `max_batch_resends` times and
    never after a Retry-After above `max_retry_after` seconds: then `DirectoryError(429, ...)` with
    `retry_after` is raised, and the queue worker sends its message again for after Retry-After
    (`shared.service.throttled`) instead of dropping it.
    A throttled write is repeated the same way (at most `WRITE_THROTTLE_ATTEMPTS` tries, never
    after a Retry-After above `max_retry_after`: the 429 is raised for the caller to re-queue,
    so no handler sleeps towards host.json's functionTimeout).
    """

    def __init__(
        self,
        client: GraphServiceClient,
        *,
        batch_concurrency: int = 4,
        max_batch_resends: int = 4,
        max_retry_after: float = 30.0,
        reprocess_priority: str | None = "Low",
        page_size: int = PAGE_SIZE,
        delta_pages_per_group: int = DELTA_PAGES_PER_GROUP,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._adapter = client.request_adapter
        self._batch_slots = asyncio.Semaphore(max(1, batch_concurrency))
        self._max_resends = max(0, max_batch_resends)
        self._max_retry_after = max_retry_after
        self._reprocess_priority = reprocess_priority
        self._top = page_size
        self._delta_pages_per_group = delta_pages_per_group
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the HTTP client behind the adapter (connections, not the credential)."""
        http = getattr(self._adapter, "_http_client", None)
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ raw transport
    async def _retrying(self, call: Callable[[], Awaitable[Any]], *, idempotent: bool) -> Any:
        """Run `call`, retrying transport errors (a reset, a stale keep-alive connection) with
        backoff when the request is safe to repeat; the SDK retries 429/503/504 but not these.
        A non-idempotent write is not repeated here: its caller knows whether it may be."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except APIError as exc:
                error = to_directory_error(exc)
                wait = error.retry_after if error.retry_after is not None else 1.0
                if (
                    idempotent
                    or error.status != 429
                    or attempt >= WRITE_THROTTLE_ATTEMPTS
                    or wait > self._max_retry_after  # longer than a handler may sleep
                ):
                    raise error from exc
                # A throttled write was not carried out: repeat it after Retry-After. (The
                # SDK's retry is off for writes, as it also repeats a 503 that may have applied.)
                log.warning("graph.write_throttled", attempt=attempt, wait=wait)
                await self._sleep(wait)
            except ClientAuthenticationError as exc:
                raise credential_error(exc) from exc
            except httpx.TransportError as exc:
                if not idempotent or attempt >= TRANSPORT_ATTEMPTS:
                    raise transport_error(exc) from exc
                wait = TRANSPORT_BACKOFF * 2 ** (attempt - 1)
                log.warning("graph.transport_retry", error=type(exc).__name__,
                            attempt=attempt, wait=wait)  # fmt: skip
                await self._sleep(wait)

    async def _send(self, info: RequestInformation, *, idempotent: bool | None = None) -> JSON:
        safe = info.http_method == Method.GET if idempotent is None else idempotent
        if not safe:
            # The SDK's retry handler repeats 429/503/504 for every method; a 503 (or 504) can
            # come after Graph applied the write, and repeating it writes twice. Writes are
            # retried by `_retrying` on 429 only; an ambiguous failure is the caller's to settle.
            info.add_request_options([RetryHandlerOption(max_retries=0, should_retry=False)])
        # "bytes": the raw response body, no models built
        raw: bytes | None = await self._retrying(
            lambda: self._adapter.send_primitive_async(info, "bytes", ERROR_MAP), idempotent=safe
        )
        return json_object(raw) if raw else {}

    async def _send_count(self, info: RequestInformation) -> int:
        """A `$count` segment read: `ConsistencyLevel: eventual` added (Graph answers 400
        without it: learn.microsoft.com/graph/aad-advanced-queries), the text/plain number
        parsed."""
        info.headers.try_add("ConsistencyLevel", "eventual")
        raw: bytes | None = await self._retrying(
            lambda: self._adapter.send_primitive_async(info, "bytes", ERROR_MAP), idempotent=True
        )
        return count_body(raw)

    async def _pages(
        self,
        first: RequestInformation,
        builder_for: Callable[[str], _UrlBuilder],
        *,
        eventual: bool = False,
    ) -> list[JSON]:
        """All items of a collection: follow full `@odata.nextLink` URLs (headers such as
        ConsistencyLevel are resent on every page, graph-facts §6.4); a nextLink sent before
        raises (`next_link_repeated`) instead of being followed round again."""
        items: list[JSON] = []
        info = first
        followed = FollowedLinks()
        while True:
            if eventual:
                info.headers.try_add("ConsistencyLevel", "eventual")
            page = await self._send(info)
            items.extend(page.get("value") or [])
            link = page.get("@odata.nextLink")
            next_link = followed.follow(str(link) if link else None)
            if next_link is None:
                return items
            info = builder_for(next_link).to_get_request_information()

    async def _raw_pages(self, url: str) -> list[JSON]:
        """Pages of a collection reached by URL only (a nextLink from a batch item)."""
        return await self._pages(self._raw_get(url), self._raw_builder)

    def _raw_get(self, url: str) -> RequestInformation:
        info = RequestInformation(Method.GET)
        info.url = url
        info.headers.try_add("Accept", "application/json")
        return info

    def _raw_builder(self, url: str) -> _UrlBuilder:
        outer = self

        class _Raw:
            def to_get_request_information(
                self, request_configuration: Any = None
            ) -> RequestInformation:
                return outer._raw_get(url)

        return _Raw()

    # ------------------------------------------------------------------ $batch
    async def _post_batch(self, requests: list[JSON]) -> list[JSON]:
        info = RequestInformation(Method.POST, "{+baseurl}/$batch", {})
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(orjson.dumps({"requests": requests}), "application/json")
        async with self._batch_slots:
            body = await self._send(info, idempotent=True)  # our batches only read
        responses = body.get("responses")
        if not isinstance(responses, list):
            raise DirectoryError(502, "UnexpectedBody", "$batch answer without responses")
        return responses

    async def _batch_get(self, urls: Mapping[str, str]) -> dict[str, tuple[int, JSON]]:
        """GET every relative URL (key -> url) through `$batch`; key -> (status, body) in the
        order of `urls` (Graph answers a batch's items in any order), with throttled or
        unavailable items re-sent; other statuses are returned as they are."""
        done: dict[str, tuple[int, JSON]] = {}
        pending = dict(urls)
        attempt = 0
        while pending:
            keys = list(pending)
            results = await asyncio.gather(
                *(self._one_batch(chunk, pending) for chunk in _chunks(keys, BATCH_LIMIT))
            )
            retry: dict[str, str] = {}
            failed: list[DirectoryError] = []
            for result in results:
                for key, (status, headers, body) in result.items():
                    if status in RETRYABLE_ITEM_STATUS:
                        retry[key] = pending[key]
                        failed.append(item_error(status, headers, body))
                    else:
                        done[key] = (status, body if isinstance(body, dict) else {})
            if not retry:
                break
            wait = max(e.retry_after if e.retry_after is not None else 1.0 for e in failed)
            attempt += 1
            if attempt > self._max_resends or wait > self._max_retry_after:
                raise _items_left(failed, attempt - 1, wait)
            await self._sleep(wait)
            pending = retry
        return {key: done[key] for key in urls if key in done}

    async def _one_batch(
        self, keys: Sequence[str], urls: Mapping[str, str]
    ) -> dict[str, tuple[int, Mapping[str, Any], Any]]:
        requests = [
            {"id": str(n), "method": "GET", "url": urls[key]} for n, key in enumerate(keys, 1)
        ]
        out: dict[str, tuple[int, Mapping[str, Any], Any]] = {}
        for resp in await self._post_batch(requests):
            try:
                key = keys[int(str(resp.get("id"))) - 1]
            except (TypeError, ValueError, IndexError):
                continue
            out[key] = (int(resp.get("status", 0)), resp.get("headers") or {}, resp.get("body"))
        for key in keys:  # an item Graph did not answer is retried like a throttled one
            out.setdefault(key, (503, {}, None))
        return out

    async def _get_by_id(self, collection: str, ids: Sequence[str], select: str) -> dict[str, JSON]:
        """The objects the keys name (ids, or UPNs for users), absent when not found. A key
        that can name no single object (empty: `/users/` is the collection; with a `/`, which
        Graph decodes as a separator: `x@y/memberOf`) is not asked for: not found either."""
        keys = [i for i in dict.fromkeys(ids) if i.strip() and "/" not in i]
        urls = {i: f"{entity_path(collection, i)}?$select={select}" for i in keys}
        found: dict[str, JSON] = {}
        for key, (status, body) in (await self._batch_get(urls)).items():
            if status == 404:
                continue
            if not 200 <= status < 300:
                raise item_error(status, {}, body)
            found[key] = _plain(body)
        return found
