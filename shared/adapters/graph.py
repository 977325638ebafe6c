"""`GraphDirectory`: the `Directory` port over Microsoft Graph with msgraph-sdk.

Bulk reads (group/member/user pages, delta, `$batch`) keep the SDK's request builders,
authentication and middleware (Graph's retry handler honours Retry-After on 429/503/504) but
skip its typed models: the raw body comes back as bytes (`send_primitive_async(..., "bytes")`)
and is parsed with orjson into plain dicts, because the models cost seconds per 999-user page
(graph-facts §9). Subscriptions are small objects and use the typed calls.

`build_graph_client` wires a `GraphServiceClient` to a base URL (Graph in any national cloud,
or graphsim on loopback) with either a static bearer token (graphsim) or an azure-identity
credential (`DefaultAzureCredential`: managed identity in Azure, `az login` on a laptop), whose
scope and allowed hosts come from the base URL (`shared.adapters.graph_auth`). Nothing here
creates a credential or a connection at import time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import httpx
import orjson
import structlog
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
    DirectoryAuditsRequestBuilder,
)
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.groups.item.members_with_license_errors.members_with_license_errors_request_builder import (  # noqa: E501
    MembersWithLicenseErrorsRequestBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription as GraphSubscription
from msgraph.generated.organization.organization_request_builder import (
    OrganizationRequestBuilder,
)
from msgraph.generated.subscribed_skus.subscribed_skus_request_builder import (
    SubscribedSkusRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.authentication import AzureIdentityAuthenticationProvider

from shared.adapters.graph_auth import credential_error, default_credential, graph_endpoint
from shared.ports.directory import (
    DELTA_FILTER_LIMIT,
    GROUP_SELECT,
    JSON,
    USER_SELECT,
    DeltaRound,
    DeltaTokenExpired,
    Directory,
    DirectoryError,
    GroupDelta,
    Subscription,
)

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
DELTA_SELECT = ("members", "assignedLicenses", "displayName")
SKU_SELECT = (
    "skuId",
    "skuPartNumber",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "prepaidUnits",
    "servicePlans",
)
ORGANIZATION_SELECT = (
    "id",
    "displayName",
    "countryLetterCode",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "verifiedDomains",  # the alerts refuse recipients outside them
)
PAGE_SIZE = 999
"""$top maximum for users, groups and group members (graph-facts §6.4)."""
BATCH_LIMIT = 20
"""Graph's maximum number of requests in one JSON batch (graph-facts §6.3)."""
RETRYABLE_ITEM_STATUS = frozenset({429, 503, 504})
EXPIRED_DELTA_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "invalidsynctoken"}
)
ERROR_MAP: dict[str, Any] = {"XXX": ODataError}
TRANSPORT_ATTEMPTS = 4
TRANSPORT_BACKOFF = 0.5
"""Seconds before the first retry of a dropped connection; doubled each time (0.5, 1, 2)."""
WRITE_THROTTLE_ATTEMPTS = 4
"""Tries of a throttled (429) write: Graph did not carry it out, so it is repeated."""

log = structlog.get_logger(__name__)


class StaticTokenAuthenticationProvider(AnonymousAuthenticationProvider):
    """Adds a fixed `Authorization: Bearer …` header (graphsim, local development)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def authenticate_request(
        self,
        request: RequestInformation,
        additional_authentication_context: dict[str, Any] | None = None,
    ) -> None:
        request.headers.try_add("Authorization", f"Bearer {self._token}")


def build_graph_client(
    base_url: str, *, static_token: str | None = None, credential: Any = None
) -> GraphServiceClient:
    """A GraphServiceClient for `base_url` (settings' GRAPH_BASE_URL, e.g.
    `https://graph.microsoft.com/v1.0`, a national cloud's, or `http://127.0.0.1:8765/v1.0` for
    graphsim).

    Authentication: `static_token` as a bearer token (graphsim), else `credential` (an
    azure-identity credential, sync or async; the caller owns and closes it), else a new
    `DefaultAzureCredential` (`shared.adapters.graph_auth.default_credential`). The token is
    requested for `https://<host>/.default` and attached only to the base URL's host;
    GraphEndpointError (a ValueError) when the URL is no Graph cloud. The HTTP client comes from
    `GraphClientFactory.create_with_default_middleware()`, so Graph's retry handler is in place.
    """
    auth: AnonymousAuthenticationProvider | AzureIdentityAuthenticationProvider
    if static_token is not None:
        auth = StaticTokenAuthenticationProvider(static_token)
    else:
        endpoint = graph_endpoint(base_url)
        if credential is None:
            credential = default_credential(os.environ)
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[endpoint.scope], allowed_hosts=endpoint.allowed_hosts
        )
    http_client: httpx.AsyncClient = GraphClientFactory.create_with_default_middleware()
    adapter = GraphRequestAdapter(auth, client=http_client)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)


class _UrlBuilder(Protocol):
    def to_get_request_information(self, request_configuration: Any = None) -> RequestInformation:
        """A request builder rebuilt on a nextLink/deltaLink URL (`.with_url(url)`)."""
        ...


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = None
    with contextlib.suppress(Exception):
        for key in ("Retry-After", "retry-after"):
            found = headers.get(key)
            if found:
                value = found
                break
    if isinstance(value, set | list | tuple):
        value = next(iter(value), None)
    if value is None:
        return None
    try:
        return max(0.0, float(str(value).strip()))
    except ValueError:
        return None


def _is_expired_delta_code(code: str) -> bool:
    low = code.lower()
    return low in EXPIRED_DELTA_CODES or "deltatoken" in low or "syncstate" in low


def to_directory_error(exc: APIError) -> DirectoryError:
    """Map a kiota APIError (msgraph's ODataError for Graph error bodies) to DirectoryError."""
    status = int(exc.response_status_code or 0)
    code = ""
    message = str(exc.primary_message or exc)
    if isinstance(exc, ODataError) and exc.error is not None:
        code = str(exc.error.code or "")
        message = str(exc.error.message or message)
    retry_after = _retry_after(exc.response_headers)
    if status == 410 or _is_expired_delta_code(code):
        return DeltaTokenExpired(status, code or "syncStateNotFound", message, retry_after)
    if status == 401:
        message = f"Graph refused the access token: {message} (check: license-guard preflight)"
    return DirectoryError(status, code or f"HTTP{status}", message, retry_after)


def _transport_error(exc: httpx.TransportError) -> DirectoryError:
    """A dropped or refused connection: transient (503), the work is retried later."""
    return DirectoryError(503, "TransportError", f"{type(exc).__name__}: {exc}")


def _item_error(status: int, headers: Mapping[str, Any], body: Any) -> DirectoryError:
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code", "")) if isinstance(err, dict) else ""
    message = str(err.get("message", "")) if isinstance(err, dict) else ""
    retry = _retry_after({k.lower(): v for k, v in headers.items()})
    return DirectoryError(status, code or f"HTTP{status}", message, retry)


def _plain(obj: JSON) -> JSON:
    """Drop OData control annotations (`@odata.context`, ...) from a single entity."""
    return {k: v for k, v in obj.items() if not k.startswith("@odata.") or k == "@odata.type"}


def _iso(dt: datetime | None) -> str:
    if dt is None:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_iso(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Graph sends up to 7 fractional digits; datetime takes 6
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _subscription(sub: GraphSubscription | None) -> Subscription:
    if sub is None:
        raise DirectoryError(502, "EmptyResponse", "Graph returned no subscription")
    return Subscription(
        id=str(sub.id or ""),
        resource=str(sub.resource or ""),
        change_type=str(sub.change_type or ""),
        notification_url=str(sub.notification_url or ""),
        lifecycle_notification_url=sub.lifecycle_notification_url,
        expiration=_iso(sub.expiration_date_time),
    )


def _odata_str(value: str) -> str:
    """A string literal's content in an OData $filter (single quotes doubled)."""
    return value.replace("'", "''")


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class GraphDirectory:
    """The `Directory` port over Graph (or graphsim). Close with `aclose()`.

    `page_size` is the `$top` of collection reads (999, Graph's maximum, unless a test wants
    small pages). Batches: at most 20 requests each, up to `batch_concurrency` in flight.
    Items answered 429/503/504 inside a batch are re-sent by us after their Retry-After (the SDK
    middleware retries whole requests, not batch items), at most `max_batch_resends` times and
    never after a Retry-After above `max_retry_after` seconds: then `DirectoryError(429, ...)` with
    `retry_after` is raised, so the queue host retries the work later instead of dropping it.
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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._adapter = client.request_adapter
        self._batch_slots = asyncio.Semaphore(max(1, batch_concurrency))
        self._max_resends = max(0, max_batch_resends)
        self._max_retry_after = max_retry_after
        self._reprocess_priority = reprocess_priority
        self._top = page_size
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the HTTP client behind the adapter (connections, not the credential)."""
        http = getattr(self._adapter, "_http_client", None)
        if isinstance(http, httpx.AsyncClient):
            await http.aclose()

    async def __aenter__(self) -> GraphDirectory:
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
                if idempotent or error.status != 429 or attempt >= WRITE_THROTTLE_ATTEMPTS:
                    raise error from exc
                # A throttled write was not carried out: repeat it after Retry-After. (The
                # SDK's retry is off for writes, as it also repeats a 503 that may have applied.)
                wait = error.retry_after if error.retry_after is not None else 1.0
                log.warning("graph.write_throttled", attempt=attempt, wait=wait)
                await self._sleep(wait)
            except ClientAuthenticationError as exc:
                raise credential_error(exc) from exc
            except httpx.TransportError as exc:
                if not idempotent or attempt >= TRANSPORT_ATTEMPTS:
                    raise _transport_error(exc) from exc
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
        if not raw:
            return {}
        parsed = orjson.loads(raw)
        if not isinstance(parsed, dict):
            raise DirectoryError(502, "UnexpectedBody", "Graph returned a non-object body")
        return parsed

    async def _pages(
        self,
        first: RequestInformation,
        builder_for: Callable[[str], _UrlBuilder],
        *,
        eventual: bool = False,
    ) -> list[JSON]:
        """All items of a collection: follow full `@odata.nextLink` URLs (headers such as
        ConsistencyLevel are resent on every page, graph-facts §6.4)."""
        items: list[JSON] = []
        info = first
        while True:
            if eventual:
                info.headers.try_add("ConsistencyLevel", "eventual")
            page = await self._send(info)
            items.extend(page.get("value") or [])
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return items
            info = builder_for(str(next_link)).to_get_request_information()

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
        """GET every relative URL (key -> url) through `$batch`; key -> (status, body) with
        throttled/unavailable items re-sent; other statuses are returned as they are."""
        done: dict[str, tuple[int, JSON]] = {}
        pending = dict(urls)
        attempt = 0
        while pending:
            keys = list(pending)
            results = await asyncio.gather(
                *(self._one_batch(chunk, pending) for chunk in _chunks(keys, BATCH_LIMIT))
            )
            retry: dict[str, str] = {}
            wait = 0.0
            last: DirectoryError | None = None
            for result in results:
                for key, (status, headers, body) in result.items():
                    if status in RETRYABLE_ITEM_STATUS:
                        retry[key] = pending[key]
                        last = _item_error(status, headers, body)
                        wait = max(wait, last.retry_after if last.retry_after is not None else 1.0)
                    else:
                        done[key] = (status, body if isinstance(body, dict) else {})
            if not retry:
                break
            attempt += 1
            if attempt > self._max_resends or wait > self._max_retry_after:
                assert last is not None
                raise DirectoryError(
                    429,
                    last.code or "TooManyRequests",
                    f"{len(retry)} batch item(s) still throttled after {attempt - 1} re-send(s)",
                    wait,
                )
            await self._sleep(wait)
            pending = retry
        return done

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
        urls = {
            i: f"/{collection}/{quote(i, safe='')}?$select={select}" for i in dict.fromkeys(ids)
        }
        found: dict[str, JSON] = {}
        for key, (status, body) in (await self._batch_get(urls)).items():
            if status == 404:
                continue
            if not 200 <= status < 300:
                raise _item_error(status, {}, body)
            found[key] = _plain(body)
        return found

    # ------------------------------------------------------------------ groups
    async def licensed_groups(self) -> list[JSON]:
        params = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="assignedLicenses/any()", select=GROUP_SELECT.split(","), top=self._top
        )
        info = self._client.groups.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        return await self._pages(info, self._client.groups.with_url)

    async def groups_by_id(self, group_ids: Sequence[str]) -> dict[str, JSON]:
        return await self._get_by_id("groups", group_ids, GROUP_SELECT)

    async def group_member_ids(self, group_id: str) -> list[str]:
        members = self._client.groups.by_group_id(group_id).members
        params = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
            select=["id"], top=self._top
        )
        info = members.to_get_request_information(RequestConfiguration(query_parameters=params))
        items = await self._pages(info, members.with_url)
        return [str(m["id"]) for m in items if m.get("@odata.type") == USER_TYPE]

    async def group_delta(self, group_ids: Sequence[str], delta_link: str | None) -> DeltaRound:
        """One delta round; `group_ids` is used only without `delta_link` (it is baked into the
        link). Raises ValueError for more than 50 ids or none."""
        delta = self._client.groups.delta
        if delta_link is None:
            ids = list(dict.fromkeys(group_ids))
            if not ids or len(ids) > DELTA_FILTER_LIMIT:
                raise ValueError(f"group_delta takes 1 to {DELTA_FILTER_LIMIT} group ids")
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=list(DELTA_SELECT), filter=" or ".join(f"id eq '{i}'" for i in ids)
            )
            info = delta.to_get_request_information(RequestConfiguration(query_parameters=params))
        else:
            info = delta.with_url(delta_link).to_get_request_information()
        merged: dict[str, _DeltaAcc] = {}
        while True:
            page = await self._send(info)
            for obj in page.get("value") or []:
                gid = str(obj.get("id"))
                merged.setdefault(gid, _DeltaAcc()).merge(obj)
            if page.get("@odata.deltaLink"):
                link = str(page["@odata.deltaLink"])
                break
            next_link = page.get("@odata.nextLink")
            if not next_link:
                raise DirectoryError(502, "UnexpectedBody", "delta page without next/deltaLink")
            info = delta.with_url(str(next_link)).to_get_request_information()
        groups = {gid: acc.result(gid) for gid, acc in merged.items()}
        return DeltaRound(groups=groups, delta_link=link, initial=delta_link is None)

    async def groups_with_license_errors(self) -> list[str]:
        params = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="hasMembersWithLicenseErrors eq true", select=["id"], count=True, top=self._top
        )
        info = self._client.groups.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        items = await self._pages(info, self._client.groups.with_url, eventual=True)
        return [str(g["id"]) for g in items]

    async def members_with_license_errors(self, group_id: str) -> list[str]:
        """User ids in error from this group's assignment; [] when the group is gone."""
        builder = self._client.groups.by_group_id(group_id).members_with_license_errors
        params = MembersWithLicenseErrorsRequestBuilder.MembersWithLicenseErrorsRequestBuilderGetQueryParameters(  # noqa: E501
            select=["id"], top=self._top
        )
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        try:
            items = await self._pages(info, builder.with_url)
        except DirectoryError as exc:
            if exc.status == 404:
                return []
            raise
        return [str(m["id"]) for m in items if m.get("@odata.type", USER_TYPE) == USER_TYPE]

    # ------------------------------------------------------------------ users
    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        return await self._get_by_id("users", user_ids, USER_SELECT)

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        """Direct group memberships per user (unknown users are absent). Uses
        `/users/{id}/memberOf?$select=id` and keeps `#microsoft.graph.group` entries (directory
        roles and administrative units are dropped)."""
        urls = {
            u: f"/users/{quote(u, safe='')}/memberOf?$select=id&$top={self._top}"
            for u in dict.fromkeys(user_ids)
        }
        out: dict[str, list[str]] = {}
        for uid, (status, body) in (await self._batch_get(urls)).items():
            if status == 404:
                continue
            if not 200 <= status < 300:
                raise _item_error(status, {}, body)
            items: list[JSON] = list(body.get("value") or [])
            if body.get("@odata.nextLink"):
                items += await self._raw_pages(str(body["@odata.nextLink"]))
            out[uid] = [str(g["id"]) for g in items if g.get("@odata.type") == GROUP_TYPE]
        return out

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        builder = self._client.users.by_user_id(user_id).reprocess_license_assignment
        info = builder.to_post_request_information()
        if self._reprocess_priority:
            info.headers.try_add("x-ms-throttle-priority", self._reprocess_priority)
        try:
            await self._send(info)
        except DirectoryError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def users_page(
        self, next_link: str | None, *, select: str = USER_SELECT
    ) -> tuple[list[JSON], str | None]:
        """One page of GET /users ($top, $select); the nextLink (which carries both) is
        followed as Graph gave it, so `select` only matters on the first call."""
        users = self._client.users
        if next_link is None:
            params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=[f for f in select.split(",") if f], top=self._top
            )
            info = users.to_get_request_information(RequestConfiguration(query_parameters=params))
        else:
            info = users.with_url(next_link).to_get_request_information()
        page = await self._send(info)
        more = page.get("@odata.nextLink")
        return list(page.get("value") or []), str(more) if more else None

    async def group_members_page(
        self, group_id: str, next_link: str | None, *, nested: list[str] | None = None
    ) -> tuple[list[str], str | None]:
        """One page of GET /groups/{id}/members ($top, $select=id), user ids only (a page may
        hold fewer ids than $top, or none, and still have a next link)."""
        members = self._client.groups.by_group_id(group_id).members
        if next_link is None:
            params = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
                select=["id"], top=self._top
            )
            info = members.to_get_request_information(RequestConfiguration(query_parameters=params))
        else:
            info = members.with_url(next_link).to_get_request_information()
        page = await self._send(info)
        items = page.get("value") or []
        ids = [str(m["id"]) for m in items if m.get("@odata.type") == USER_TYPE]
        if nested is not None:
            nested.extend(str(m["id"]) for m in items if m.get("@odata.type") == GROUP_TYPE)
        more = page.get("@odata.nextLink")
        return ids, str(more) if more else None

    # ------------------------------------------------------------------ audit log, mail
    async def directory_audits(self, since: str, activities: Sequence[str] = ()) -> list[JSON]:
        """GET /auditLogs/directoryAudits?$filter=activityDateTime ge <since>, all pages,
        newest first. `activityDisplayName` supports only `eq`/`startswith` in $filter
        (graph-facts §3.8), so each activity is one filtered query (`... and
        activityDisplayName eq 'X'`) and the results are merged."""
        start = _iso(_parse_iso(since))
        clauses = [f"activityDateTime ge {start}"]
        names = list(dict.fromkeys(activities))
        filters = (
            [f"{clauses[0]} and activityDisplayName eq '{_odata_str(n)}'" for n in names]
            if names
            else clauses
        )
        builder = self._client.audit_logs.directory_audits
        found: dict[str, JSON] = {}
        for text in filters:
            params = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
                filter=text
            )
            info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
            for entry in await self._pages(info, builder.with_url):
                found.setdefault(str(entry.get("id")), entry)
        entries = list(found.values())
        entries.sort(key=lambda e: _parse_iso(str(e.get("activityDateTime"))), reverse=True)
        return entries

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        """POST /users/{sender}/sendMail with `{"message": ..., "saveToSentItems": ...}` as
        JSON (202, no body). Throttling is retried by the SDK middleware after Retry-After;
        what is left raises DirectoryError (429 with `retry_after`, 400 for a bad message)."""
        builder = self._client.users.by_user_id(sender).send_mail
        info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
        info.headers.try_add("Accept", "application/json")
        body = {"message": message, "saveToSentItems": save_to_sent_items}
        info.set_stream_content(orjson.dumps(body), "application/json")
        await self._send(info)

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        """GET .../mailFolders/drafts/messages?$filter=internetMessageId eq '<id>'&$select=id
        (a filterable message property; mailfolder-list-messages)."""
        builder = (
            self._client.users.by_user_id(sender).mail_folders.by_mail_folder_id("drafts").messages
        )
        params = builder.MessagesRequestBuilderGetQueryParameters(
            filter=f"internetMessageId eq '{_odata_str(internet_message_id)}'",
            select=["id"],
            top=10,
        )
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        found = (await self._send(info)).get("value") or []
        return str(found[0]["id"]) if found else None

    async def create_draft(self, sender: str, mime: bytes) -> str:
        """POST /users/{sender}/messages, MIME form: base64 body, `Content-Type: text/plain`
        (user-post-messages). Not repeated on a transport error: the caller looks first."""
        builder = self._client.users.by_user_id(sender).messages
        info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(base64.b64encode(mime), "text/plain")
        created = await self._send(info, idempotent=False)
        if not created.get("id"):
            raise DirectoryError(502, "UnexpectedBody", "Graph created a draft without an id")
        return str(created["id"])

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        builder = self._client.users.by_user_id(sender).messages.by_message_id(draft_id).send
        info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
        info.headers.try_add("Accept", "application/json")
        try:
            await self._send(info, idempotent=False)
        except DirectoryError as error:
            if error.status == 404 and error.code == "ErrorItemNotFound":
                return False
            raise
        return True

    # ------------------------------------------------------------------ tenant
    async def subscribed_skus(self) -> list[JSON]:
        params = SubscribedSkusRequestBuilder.SubscribedSkusRequestBuilderGetQueryParameters(
            select=list(SKU_SELECT)
        )
        info = self._client.subscribed_skus.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        return await self._pages(info, self._client.subscribed_skus.with_url)

    async def organization(self) -> JSON | None:
        params = OrganizationRequestBuilder.OrganizationRequestBuilderGetQueryParameters(
            select=list(ORGANIZATION_SELECT)
        )
        info = self._client.organization.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        orgs = await self._pages(info, self._client.organization.with_url)
        return orgs[0] if orgs else None

    # ------------------------------------------------------------------ subscriptions
    async def _typed(self, call: Callable[[], Awaitable[Any]], *, idempotent: bool = True) -> Any:
        return await self._retrying(call, idempotent=idempotent)

    async def subscriptions(self) -> list[Subscription]:
        found: list[Subscription] = []
        page = await self._typed(self._client.subscriptions.get)
        while page is not None:
            found.extend(_subscription(s) for s in page.value or [])
            if not page.odata_next_link:
                break
            builder = self._client.subscriptions.with_url(page.odata_next_link)
            page = await self._typed(builder.get)
        return found

    async def subscription(self, subscription_id: str) -> Subscription | None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            return _subscription(await self._typed(item.get))
        except DirectoryError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_subscription(
        self,
        *,
        resource: str,
        change_type: str,
        notification_url: str,
        lifecycle_notification_url: str,
        client_state: str,
        expiration: str,
    ) -> Subscription:
        body = GraphSubscription(
            resource=resource,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_notification_url,
            client_state=client_state,
            expiration_date_time=_parse_iso(expiration),
        )
        # Not repeated on a dropped connection: the keeper finds a subscription whose answer
        # was lost as ours on its next look, and deletes extras.
        post = self._client.subscriptions.post
        return _subscription(await self._typed(lambda: post(body), idempotent=False))

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription:
        body = GraphSubscription(expiration_date_time=_parse_iso(expiration))
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        return _subscription(await self._typed(lambda: item.patch(body)))

    async def reauthorize_subscription(self, subscription_id: str) -> None:
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        await self._typed(item.reauthorize.post)

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete; a subscription that is already gone (404) counts as deleted."""
        item = self._client.subscriptions.by_subscription_id(subscription_id)
        try:
            await self._typed(item.delete)
        except DirectoryError as exc:
            if exc.status != 404:
                raise


class _DeltaAcc:
    """One group's entries merged across delta pages (a big group spans several pages)."""

    __slots__ = ("added", "deleted", "nested_added", "nested_removed", "properties", "removed")

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.nested_added: set[str] = set()
        self.nested_removed: set[str] = set()
        self.properties: JSON = {}
        self.deleted = False

    def merge(self, obj: JSON) -> None:
        if "@removed" in obj:
            self.deleted = True
            return
        for member in obj.get("members@delta") or []:
            kind = member.get("@odata.type")
            if kind == USER_TYPE:
                added, removed = self.added, self.removed
            elif kind == GROUP_TYPE:
                added, removed = self.nested_added, self.nested_removed
            else:
                continue
            mid = str(member.get("id"))
            if "@removed" in member:
                removed.add(mid)
                added.discard(mid)
            else:
                added.add(mid)
                removed.discard(mid)
        for key, value in obj.items():
            if key not in {"id", "members@delta"} and not key.startswith("@"):
                self.properties[key] = value

    def result(self, gid: str) -> GroupDelta:
        if self.deleted:
            return GroupDelta(group_id=gid, deleted=True)
        return GroupDelta(
            group_id=gid,
            added=frozenset(self.added),
            removed=frozenset(self.removed),
            nested_added=frozenset(self.nested_added),
            nested_removed=frozenset(self.nested_removed),
            properties=dict(self.properties),
        )


if TYPE_CHECKING:

    def _is_a_directory(directory: GraphDirectory) -> Directory:
        return directory  # mypy checks GraphDirectory against the port
