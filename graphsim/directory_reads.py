"""The Graph reads graphsim serves: users, groups and their members, members with license
errors, deleted items, delta (groups and users), subscribedSkus, organization, the directory
audit log and the app roles granted to a service principal, each with the
`$select`/`$filter`/`$expand`/`$count` Graph allows there."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .delta import DeltaEngine
from .errors import GraphError, bad_request, not_found
from .graph_views import group_view, member_view, role_or_unit_view, user_view
from .license_status import members_with_license_errors
from .memberships import GROUP_TYPE, USER_TYPE
from .odata import (
    Query,
    compile_filter,
    context_url,
    parse_query,
    project,
    require_advanced,
    require_eventual,
)
from .paging import serve_page, wants_count
from .schema import (
    GROUP_PROPERTIES,
    ORGANIZATION_PROPERTIES,
    SUBSCRIBED_SKU_PROPERTIES,
    USER_PROPERTIES,
    check_select,
)
from .state import SimState
from .users_delta import UsersDelta
from .wire import Req, Resp

Obj = dict[str, Any]

USER_FILTERABLE = frozenset(
    {
        "id",
        "assignedLicenses",
        "usageLocation",
        "accountEnabled",
        "userPrincipalName",
        "displayName",
        "mail",
        "department",
        "onPremisesSyncEnabled",
        "userType",
        "country",
    }
)
GROUP_FILTERABLE = frozenset(
    {
        "id",
        "assignedLicenses",
        "hasMembersWithLicenseErrors",
        "displayName",
        "securityEnabled",
        "mailEnabled",
        "onPremisesSyncEnabled",
        "mailNickname",
        "groupTypes",
    }
)
AUDIT_FILTERABLE = frozenset(
    {
        "activityDateTime",
        "activityDisplayName",
        "category",
        "loggedByService",
        "result",
        "initiatedBy/app/displayName",
        "initiatedBy/app/appId",
        "initiatedBy/user/id",
        "initiatedBy/user/userPrincipalName",
    }
)


class DirectoryReads:
    """GET handlers over the tenant state (`Req -> Resp`, transport-free)."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.delta = DeltaEngine(state)
        self.users_delta_engine = UsersDelta(state)

    async def list_users(self, req: Req) -> Resp:
        q, pred = _listing(req, "user", USER_PROPERTIES, USER_FILTERABLE)
        users = self.state.users
        sel = q.select

        if pred is None:

            def view(uid: str) -> Obj | None:
                return user_view(users[uid], sel)
        else:

            def view(uid: str) -> Obj | None:
                user = users[uid]
                return user_view(user, sel) if pred(user) else None

        count = _counter(req, q, users.values(), pred)
        return serve_page(req, self.state, "users", self.state.user_order, view, q, count=count)

    async def count_users(self, req: Req) -> Resp:
        """GET /users/$count: the number as text/plain, only with `ConsistencyLevel: eventual`
        (without it Graph answers 400 Request_BadRequest; learn.microsoft.com/graph/
        aad-advanced-queries, "Error handling for advanced queries on directory objects")."""
        require_eventual(req.headers)
        q = parse_query(req.params)
        pred = compile_filter(q.filter, USER_FILTERABLE).predicate if q.filter else None
        n = sum(1 for u in self.state.users.values() if pred is None or pred(u))
        return Resp(200, raw=str(n).encode(), headers={"Content-Type": "text/plain"})

    async def get_user(self, req: Req, uid: str) -> Resp:
        q = parse_query(req.params)
        check_select(q.select, "user", USER_PROPERTIES)
        body = user_view(self.state.user(uid), q.select)
        return Resp(
            200,
            {"@odata.context": context_url(req.base_url, "users", q.select) + "/$entity", **body},
        )

    async def user_member_of(self, req: Req, uid: str) -> Resp:
        q = parse_query(req.params)
        user = self.state.user(uid)
        gids = sorted(self.state.index.get(user["id"], ()))
        gids += sorted(
            g for g, mids in self.state.member_ids.items() if user["id"] in mids and g not in gids
        )
        groups = self.state.groups
        # Graph lists the user's directory roles and administrative units too (user-list-memberof)
        others = {
            o["id"]: o for o in self.state.roles_and_units if user["id"] in (o.get("members") or ())
        }

        def view(key: str) -> Obj | None:
            if key in others:
                return role_or_unit_view(others[key], q.select)
            g = groups.get(key)
            return {"@odata.type": GROUP_TYPE, **group_view(g, q.select)} if g else None

        return serve_page(req, self.state, "directoryObjects", [*gids, *others], view, q)

    def _group_computed(self) -> dict[str, Callable[[Obj], Any]]:
        return {"hasMembersWithLicenseErrors": self.state.has_license_errors}

    async def list_groups(self, req: Req) -> Resp:
        q, pred = _listing(req, "group", GROUP_PROPERTIES, GROUP_FILTERABLE, self._group_computed())
        groups = self.state.groups
        expand = self._expand(q)

        def view(gid: str) -> Obj | None:
            g = groups.get(gid)
            if g is None or (pred is not None and not pred(g)):
                return None
            return self._group_out(g, q.select, expand)

        count = _counter(req, q, groups.values(), pred)
        return serve_page(req, self.state, "groups", list(groups), view, q, count=count)

    def _expand(self, q: Query) -> tuple[str, ...] | None:
        if not q.expand:
            return None
        m = re.fullmatch(r"members(?:\(\$select=([\w,]+)\))?", q.expand.strip())
        if not m:
            raise bad_request(
                f"Could not find a property named '{q.expand}' on type 'microsoft.graph.group'."
            )
        return tuple(m.group(1).split(",")) if m.group(1) else ("id",)

    def _group_out(
        self, g: Obj, select: tuple[str, ...] | None, expand: tuple[str, ...] | None
    ) -> Obj:
        out = group_view(g, select)
        if expand is not None:
            out["members"] = [member_view(self.state, m, expand) for m in g["members"]]
        return out

    async def get_group(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        check_select(q.select, "group", GROUP_PROPERTIES)
        body = self._group_out(self.state.group(gid), q.select, self._expand(q))
        return Resp(
            200,
            {"@odata.context": context_url(req.base_url, "groups", q.select) + "/$entity", **body},
        )

    async def get_deleted_item(self, req: Req, gid: str) -> Resp:
        group = self.state.deleted_group(gid)
        body = {
            "@odata.context": f"{req.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": "#microsoft.graph.group",
            **group_view(group, None),
            "deletedDateTime": group["deletedDateTime"],
        }
        return Resp(200, body)

    async def group_members(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        group = self.state.group(gid)
        if q.filter:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        members = group["members"]
        state = self.state
        return serve_page(
            req,
            state,
            "directoryObjects",
            members,
            lambda m: member_view(state, m, q.select),
            q,
        )

    async def group_errors(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        self.state.group(gid)
        found = members_with_license_errors(gid, self.state.users, self.state.groups)
        ids = list(found)

        def view(uid: str) -> Obj | None:
            user = self.state.users.get(uid)
            return {"@odata.type": USER_TYPE, **user_view(user, q.select)} if user else None

        return serve_page(req, self.state, "directoryObjects", ids, view, q)

    async def groups_delta(self, req: Req) -> Resp:
        return Resp(200, self.delta.handle(req.base_url, req.params))

    async def users_delta(self, req: Req) -> Resp:
        return Resp(200, self.users_delta_engine.handle(req.base_url, req.params))

    async def list_skus(self, req: Req) -> Resp:
        q = parse_query(req.params)
        if q.filter or q.top:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        check_select(q.select, "subscribedSku", SUBSCRIBED_SKU_PROPERTIES)
        value = [project(s, q.select, None) for s in self.state.skus.values()]
        return Resp(
            200,
            {
                "@odata.context": context_url(req.base_url, "subscribedSkus", q.select),
                "value": value,
            },
        )

    async def list_org(self, req: Req) -> Resp:
        q = parse_query(req.params)
        check_select(q.select, "organization", ORGANIZATION_PROPERTIES)
        value = [project(o, q.select, None) for o in self.state.organization]
        return Resp(
            200,
            {"@odata.context": context_url(req.base_url, "organization", q.select), "value": value},
        )

    async def list_audits(self, req: Req) -> Resp:
        q = parse_query(req.params)
        pred = compile_filter(q.filter, AUDIT_FILTERABLE).predicate if q.filter else None
        entries = list(reversed(self.state.audit))

        def view(entry: Obj) -> Obj | None:
            if pred is not None and not pred(entry):
                return None
            return project(entry, q.select, None)

        return serve_page(req, self.state, "auditLogs/directoryAudits", entries, view, q)

    async def app_role_assignments(self, req: Req, sp_id: str) -> Resp:
        """`GET /servicePrincipals/{id}/appRoleAssignments`: the app roles (application
        permissions) granted to a service principal, from the tenant's `servicePrincipals`
        (learn.microsoft.com/graph/api/serviceprincipal-list-approleassignments)."""
        q = parse_query(req.params)
        sp = self.state.service_principals.get(sp_id)
        if sp is None:
            raise not_found(sp_id)
        assignments = [
            {
                "principalId": sp["id"],
                "principalType": "ServicePrincipal",
                "principalDisplayName": sp.get("displayName"),
                "resourceDisplayName": "Microsoft Graph",
                **assignment,
            }
            for assignment in sp.get("appRoleAssignments") or []
        ]
        return serve_page(
            req,
            self.state,
            "appRoleAssignments",
            assignments,
            lambda assignment: project(assignment, q.select, None),
            q,
        )


def _listing(
    req: Req,
    kind: str,
    properties: frozenset[str],
    filterable: frozenset[str],
    computed: dict[str, Callable[[Obj], Any]] | None = None,
) -> tuple[Query, Callable[[Obj], bool] | None]:
    """A collection read's query and `$filter` predicate (None: every item), with Graph's 400s
    for an unknown `$select` name and its advanced-query rules."""
    q = parse_query(req.params)
    check_select(q.select, kind, properties)
    if not q.filter:
        return q, None
    compiled = compile_filter(q.filter, filterable, computed)
    if compiled.advanced:
        require_advanced(req.headers, q)
    return q, compiled.predicate


def _counter(
    req: Req, q: Query, items: Iterable[Obj], pred: Callable[[Obj], bool] | None
) -> Callable[[], int] | None:
    """`@odata.count` for the filtered items, when the request asks for it."""
    if not wants_count(req, q):
        return None
    return lambda: sum(1 for item in items if pred is None or pred(item))
