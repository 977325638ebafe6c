"""`GraphDirectory`: the `Directory` port over Microsoft Graph with msgraph-sdk.

This module holds the reads (groups, delta rounds, users, the audit log, the tenant) and the one
directory write (reprocessLicenseAssignment). The rest is apart: sending, paging and `$batch`
in `graph_transport`, error translation in `graph_errors`, mail in `graph_mail`, subscriptions
in `graph_subscriptions`, delta-page merging in `graph_delta`, and the client itself
(`build_graph_client`, the one place that signs in) in `graph_client`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
    DirectoryAuditsRequestBuilder,
)
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.groups.item.members_with_license_errors.members_with_license_errors_request_builder import (  # noqa: E501
    MembersWithLicenseErrorsRequestBuilder,
)
from msgraph.generated.organization.organization_request_builder import (
    OrganizationRequestBuilder,
)
from msgraph.generated.subscribed_skus.subscribed_skus_request_builder import (
    SubscribedSkusRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from shared.adapters.graph_client import build_graph_client
from shared.adapters.graph_delta import GROUP_TYPE, USER_TYPE, DeltaMerge, DeltaPages
from shared.adapters.graph_errors import item_error
from shared.adapters.graph_mail import GraphMailbox, odata_str
from shared.adapters.graph_paths import entity_path
from shared.adapters.graph_subscriptions import GraphSubscriptions, graph_iso
from shared.adapters.graph_token import token_app_roles
from shared.core.graph_values import parse_graph_time
from shared.ports.audit_entries import AuditEntry
from shared.ports.directory import (
    GROUP_SELECT,
    JSON,
    USER_SELECT,
    DeltaRound,
    Directory,
    DirectoryError,
    GroupConfig,
    delta_filter_ids,
    group_configs_by_id,
)
from shared.ports.paging import next_link_repeated

__all__ = ["GraphDirectory", "build_graph_client"]

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


class GraphDirectory(GraphMailbox, GraphSubscriptions):
    """The `Directory` port over Graph (or graphsim). Close with `aclose()`; the options
    (`page_size`, batch limits, `reprocess_priority`) are `GraphTransport`'s."""

    async def licensed_group_configs(self) -> list[GroupConfig]:
        return list(group_configs_by_id(await self._licensed_group_objects()).values())

    async def group_configs(self, group_ids: Sequence[str]) -> dict[str, GroupConfig]:
        return group_configs_by_id(
            (await self._get_by_id("groups", group_ids, GROUP_SELECT)).values()
        )

    async def _licensed_group_objects(self) -> list[JSON]:
        """Every group with licenses, GROUP_SELECT fields, as Graph returns them."""
        params = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="assignedLicenses/any()", select=GROUP_SELECT.split(","), top=self._top
        )
        info = self._client.groups.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        return await self._pages(info, self._client.groups.with_url)

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
        link). Raises ValueError for more than 50 ids or none, and DirectoryError (502) when
        the server sends a nextLink twice or more pages than the partition can fill."""
        delta = self._client.groups.delta
        if delta_link is None:
            ids = delta_filter_ids(group_ids)
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=list(DELTA_SELECT), filter=" or ".join(f"id eq '{i}'" for i in ids)
            )
            info = delta.to_get_request_information(RequestConfiguration(query_parameters=params))
        else:
            info = delta.with_url(delta_link).to_get_request_information()
        merged: dict[str, DeltaMerge] = {}
        pages = DeltaPages(group_ids, self._delta_pages_per_group)
        while True:
            page = await self._send(info)
            for obj in page.get("value") or []:
                gid = str(obj.get("id"))
                merged.setdefault(gid, DeltaMerge()).merge(obj)
            if page.get("@odata.deltaLink"):
                link = str(page["@odata.deltaLink"])
                break
            next_link = page.get("@odata.nextLink")
            if not next_link:
                raise DirectoryError(502, "UnexpectedBody", "delta page without next/deltaLink")
            info = delta.with_url(pages.follow(str(next_link))).to_get_request_information()
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
            u: f"{entity_path('users', u)}/memberOf?$select=id&$top={self._top}"
            for u in dict.fromkeys(user_ids)
        }
        out: dict[str, list[str]] = {}
        for uid, (status, body) in (await self._batch_get(urls)).items():
            if status == 404:
                continue
            if not 200 <= status < 300:
                raise item_error(status, {}, body)
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

    async def app_roles(self) -> frozenset[str] | None:
        """From the token the client signs its requests with, asked of its auth provider as
        for any Graph request (the credential caches it); None when none can be had now."""
        info = self._client.organization.to_get_request_information()
        info.path_parameters["baseurl"] = self._adapter.base_url  # set by the adapter on send
        auth = getattr(self._adapter, "_authentication_provider", None)
        if auth is None:
            return None
        try:
            await auth.authenticate_request(info)
        except AzureError:
            return None
        bearer = next(iter(info.headers.get("Authorization")), "")
        return token_app_roles(bearer.removeprefix("Bearer ")) if bearer else None

    async def user_count(self) -> int:
        """GET /users/$count with `ConsistencyLevel: eventual`; Graph answers text/plain."""
        return await self._send_count(self._client.users.count.to_get_request_information())

    async def users_page(
        self, next_link: str | None, *, select: str = USER_SELECT
    ) -> tuple[list[JSON], str | None]:
        """One page of GET /users ($top, $select); the nextLink (which carries both) is
        followed as Graph gave it, so `select` only matters on the first call. A page that
        names itself as the next one raises (`next_link_repeated`): its caller's loop would
        never end."""
        users = self._client.users
        if next_link is None:
            params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=[f for f in select.split(",") if f], top=self._top
            )
            info = users.to_get_request_information(RequestConfiguration(query_parameters=params))
        else:
            info = users.with_url(next_link).to_get_request_information()
        page = await self._send(info)
        more = _next_page(page, next_link)
        return list(page.get("value") or []), more

    async def group_members_page(
        self, group_id: str, next_link: str | None, *, nested: list[str] | None = None
    ) -> tuple[list[str], str | None]:
        """One page of GET /groups/{id}/members ($top, $select=id), user ids only (a page may
        hold fewer ids than $top, or none, and still have a next link); a page that names
        itself as the next one raises, as `users_page`'s."""
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
        return ids, _next_page(page, next_link)

    # ------------------------------------------------------------------ audit log, mail
    async def directory_audits(
        self, since: str, activities: Sequence[str] = ()
    ) -> list[AuditEntry]:
        """GET /auditLogs/directoryAudits?$filter=activityDateTime ge <since>, all pages,
        newest first. `activityDisplayName` supports only `eq`/`startswith` in $filter
        (graph-facts §3.8), so each activity is one filtered query (`... and
        activityDisplayName eq 'X'`) and the results are merged."""
        start = graph_iso(parse_graph_time(since))
        clauses = [f"activityDateTime ge {start}"]
        names = list(dict.fromkeys(activities))
        filters = (
            [f"{clauses[0]} and activityDisplayName eq '{odata_str(n)}'" for n in names]
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
        entries.sort(key=lambda e: parse_graph_time(str(e.get("activityDateTime"))), reverse=True)
        return [AuditEntry.from_graph(e) for e in entries]

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


def _next_page(page: JSON, asked: str | None) -> str | None:
    """The page's nextLink; `next_link_repeated` when it is the link the page was asked by."""
    more = page.get("@odata.nextLink")
    if not more:
        return None
    if asked is not None and str(more) == asked:
        raise next_link_repeated()
    return str(more)


if TYPE_CHECKING:

    def _is_a_directory(directory: GraphDirectory) -> Directory:
        return directory  # mypy checks GraphDirectory against the port
