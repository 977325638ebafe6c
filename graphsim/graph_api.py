"""The Graph v1.0 endpoints graphsim serves, as a small router over `Req -> Resp`.

Handlers are transport-free so that `$batch` items run through exactly the same path (auth
aside) as top-level requests: faults, throttling, counting and error shapes included.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from . import license_status
from .delta import DeltaEngine
from .errors import GraphError, bad_request, error_body, not_found, throttled_body
from .faults import AFTER_HANDLER, Faults
from .mail import accept_mail
from .memberships import GROUP_TYPE, USER_TYPE
from .notify import Notifier
from .odata import (
    DEFAULT_TOP,
    Query,
    compile_filter,
    context_url,
    decode_token,
    encode_token,
    next_link,
    parse_query,
    project,
    require_advanced,
)
from .state import SimState
from .subscriptions import SubscriptionService
from .throttle import Throttle, request_cost
from .users_delta import USER_DEFAULT, UsersDelta
from .wire import Req, Resp

Obj = dict[str, Any]

REPROCESS_EXTRA = ("accountEnabled", "assignedLicenses", "assignedPlans")
"""Beyond the default properties, reprocessLicenseAssignment's user carries these (the doc's
example response)."""
GROUP_SELECT_ONLY = {"assignedLicenses", "licenseProcessingState"}
GROUP_HIDDEN = {"members", "hasMembersWithLicenseErrors"}
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


Handler = Callable[..., Awaitable[Resp]]


def group_view(group: Obj, select: tuple[str, ...] | None) -> Obj:
    if select is None:
        return {
            k: v
            for k, v in group.items()
            if k not in GROUP_HIDDEN and k not in GROUP_SELECT_ONLY and not k.startswith("_")
        }
    out = project(group, tuple(s for s in select if s not in GROUP_HIDDEN), None)
    return out


def user_view(user: Obj, select: tuple[str, ...] | None) -> Obj:
    return project(user, select, USER_DEFAULT)


class GraphApi:
    """Routes and handlers; owns the throttle, faults, delta engine and subscription service."""

    def __init__(
        self, state: SimState, notifier: Notifier, throttle: Throttle, faults: Faults
    ) -> None:
        self.state = state
        self.notifier = notifier
        self.throttle = throttle
        self.faults = faults
        self.delta = DeltaEngine(state)
        self.users_delta_engine = UsersDelta(state)
        self.subs = SubscriptionService(state, notifier)
        r = self._route
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        seg = r"([^/]+)"
        r("GET", r"/users/delta(?:\(\))?", "/users/delta", self.users_delta)
        r("GET", "/users", "/users", self.list_users)
        r("GET", f"/users/{seg}", "/users/{id}", self.get_user)
        r("GET", f"/users/{seg}/memberOf", "/users/{id}/memberOf", self.user_member_of)
        r("POST", f"/users/{seg}/assignLicense", "/users/{id}/assignLicense", self.user_assign)
        r(
            "POST",
            f"/users/{seg}/reprocessLicenseAssignment",
            "/users/{id}/reprocessLicenseAssignment",
            self.user_reprocess,
        )
        r("POST", f"/users/{seg}/sendMail", "/users/{id}/sendMail", self.send_mail)
        r("POST", f"/users/{seg}/messages", "/users/{id}/messages", self.create_draft)
        r(
            "POST",
            f"/users/{seg}/messages/{seg}/send",
            "/users/{id}/messages/{id}/send",
            self.send_draft,
        )
        r(
            "GET",
            f"/users/{seg}/mailFolders/drafts/messages",
            "/users/{id}/mailFolders/drafts/messages",
            self.list_drafts,
        )
        r("GET", r"/groups/delta(?:\(\))?", "/groups/delta", self.groups_delta)
        r("GET", "/groups", "/groups", self.list_groups)
        r("GET", f"/groups/{seg}", "/groups/{id}", self.get_group)
        r("DELETE", f"/groups/{seg}", "/groups/{id}", self.delete_group)
        r("GET", f"/groups/{seg}/members", "/groups/{id}/members", self.group_members)
        r(
            "GET",
            f"/groups/{seg}/membersWithLicenseErrors",
            "/groups/{id}/membersWithLicenseErrors",
            self.group_errors,
        )
        r("POST", rf"/groups/{seg}/members/\$ref", "/groups/{id}/members/$ref", self.add_ref)
        r(
            "DELETE",
            rf"/groups/{seg}/members/{seg}/\$ref",
            "/groups/{id}/members/{id}/$ref",
            self.remove_ref,
        )
        r("POST", f"/groups/{seg}/assignLicense", "/groups/{id}/assignLicense", self.group_assign)
        r(
            "GET",
            f"/directory/deletedItems/{seg}",
            "/directory/deletedItems/{id}",
            self.get_deleted_item,
        )
        r(
            "POST",
            f"/directory/deletedItems/{seg}/restore",
            "/directory/deletedItems/{id}/restore",
            self.restore_deleted_item,
        )
        r("GET", "/subscribedSkus", "/subscribedSkus", self.list_skus)
        r("GET", "/organization", "/organization", self.list_org)
        r("GET", "/auditLogs/directoryAudits", "/auditLogs/directoryAudits", self.list_audits)
        r("GET", "/subscriptions", "/subscriptions", self.subs.list)
        r("POST", "/subscriptions", "/subscriptions", self.subs.create)
        r("GET", f"/subscriptions/{seg}", "/subscriptions/{id}", self.subs.get)
        r("PATCH", f"/subscriptions/{seg}", "/subscriptions/{id}", self.subs.update)
        r("DELETE", f"/subscriptions/{seg}", "/subscriptions/{id}", self.subs.delete)
        r(
            "POST",
            f"/subscriptions/{seg}/reauthorize",
            "/subscriptions/{id}/reauthorize",
            self.subs.reauthorize,
        )

    def _route(self, method: str, pattern: str, template: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"{pattern}/?", re.I), template, handler))

    def match(self, method: str, path: str) -> tuple[str, Handler | None, tuple[str, ...]]:
        """(template, handler, path args); handler None with a template means wrong method."""
        seen = ""
        for m, pattern, template, handler in self.routes:
            found = pattern.fullmatch(path)
            if found:
                if m == method.upper():
                    return template, handler, found.groups()
                seen = template
        return seen, None, ()

    # ----------------------------------------------------------------- dispatch
    async def dispatch(self, req: Req) -> Resp:
        self.state.pump()
        self.notifier.check_lifecycle()
        template, handler, args = self.match(req.method, req.path)
        key = f"{req.method.upper()} {template or req.path}"
        if handler is None:
            if template:
                resp = self.error(
                    req,
                    GraphError(
                        405, "Request_BadRequest", f"The HTTP method '{req.method}' is not allowed."
                    ),
                )
            else:
                segment = req.path.strip("/").split("/")[-1] if req.path.strip("/") else ""
                resp = self.error(
                    req,
                    GraphError(
                        400, "BadRequest", f"Resource not found for the segment '{segment}'."
                    ),
                )
            self.state.count(key, resp.status)
            return resp
        resp = await self._guarded(req, template, handler, args)
        self.state.count(key, resp.counted_as or resp.status)
        return resp

    async def _guarded(
        self, req: Req, template: str, handler: Handler, args: tuple[str, ...]
    ) -> Resp:
        delay = self.faults.latency()
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.pick(req.method)
        if fault in ("reset", "applyReset") and req.in_batch:
            fault = "503" if fault == "reset" else "apply503"
        if fault == "429":
            return self.too_many(req, self.faults.retry_after, "", "Fault")
        if fault == "503":
            return self.unavailable(req)
        if fault == "reset":
            return Resp(-1)
        cost, write = request_cost(req.method, template, req.params)
        priority = req.headers.get("x-ms-throttle-priority", "Normal")
        decision = self.throttle.check(req.app_id, self.state.tenant_id, cost, write, priority)
        if not decision.allowed:
            return self.too_many(req, decision.retry_after, decision.scope, decision.information)
        try:
            resp = await handler(req, *args)
        except GraphError as exc:
            resp = self.error(req, exc)
        if fault in AFTER_HANDLER:
            # Done (a write applied), and the answer is lost: the client cannot tell.
            lost = Resp(-1) if fault == "applyReset" else self.unavailable(req)
            lost.counted_as = f"{resp.status}+{fault}"
            return lost
        resp.headers["x-ms-resource-unit"] = str(cost)
        if decision.used_share >= 0.8:
            resp.headers["x-ms-throttle-limit-percentage"] = f"{decision.used_share:.1f}"
        return resp

    def unavailable(self, req: Req) -> Resp:
        return Resp(
            503,
            error_body(
                "serviceNotAvailable",
                "Service unavailable.",
                client_request_id=req.headers.get("client-request-id"),
            ),
            {"Retry-After": str(self.faults.retry_after)},
        )

    def too_many(self, req: Req, retry_after: int, scope: str, info: str) -> Resp:
        headers = {"Retry-After": str(retry_after)}
        if scope:
            headers["x-ms-throttle-scope"] = scope
        if info:
            headers["x-ms-throttle-information"] = info
        return Resp(429, throttled_body(req.headers.get("client-request-id")), headers)

    def error(self, req: Req, exc: GraphError) -> Resp:
        body = error_body(
            exc.code,
            exc.message,
            client_request_id=req.headers.get("client-request-id"),
            inner=exc.inner,
        )
        return Resp(exc.status, body, dict(exc.headers))

    # ----------------------------------------------------------------- collections
    def _page(
        self,
        req: Req,
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
        if query.skiptoken:
            tok = decode_token(query.skiptoken)
            if (
                tok is None
                or tok.get("g") != self.state.generation
                or not isinstance(tok.get("p"), int)
            ):
                raise bad_request("Invalid $skiptoken value.", code="Request_BadRequest")
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
                    encode_token({"p": i, "g": self.state.generation}),
                )
                break
            i += 1
        body["value"] = value
        return Resp(200, body)

    def _count_if(self, req: Req, query: Query) -> bool:
        return query.count and req.headers.get("consistencylevel", "").lower() == "eventual"

    async def list_users(self, req: Req) -> Resp:
        q = parse_query(req.params)
        users = self.state.users
        pred = None
        if q.filter:
            compiled = compile_filter(q.filter, USER_FILTERABLE)
            if compiled.advanced:
                require_advanced(req.headers, q)
            pred = compiled.predicate
        sel = q.select

        if pred is None:

            def view(uid: str) -> Obj | None:
                return user_view(users[uid], sel)
        else:

            def view(uid: str) -> Obj | None:
                user = users[uid]
                return user_view(user, sel) if pred(user) else None

        count = None
        if self._count_if(req, q):

            def count() -> int:
                return sum(1 for u in users.values() if pred is None or pred(u))

        return self._page(req, "users", self.state.user_order, view, q, count=count)

    async def get_user(self, req: Req, uid: str) -> Resp:
        q = parse_query(req.params)
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

        def view(gid: str) -> Obj | None:
            g = groups.get(gid)
            return {"@odata.type": GROUP_TYPE, **group_view(g, q.select)} if g else None

        return self._page(req, "directoryObjects", gids, view, q)

    def _group_computed(self) -> dict[str, Callable[[Obj], Any]]:
        return {"hasMembersWithLicenseErrors": self.state.has_license_errors}

    async def list_groups(self, req: Req) -> Resp:
        q = parse_query(req.params)
        groups = self.state.groups
        pred = None
        if q.filter:
            compiled = compile_filter(q.filter, GROUP_FILTERABLE, self._group_computed())
            if compiled.advanced:
                require_advanced(req.headers, q)
            pred = compiled.predicate
        expand = self._expand(q)

        def view(gid: str) -> Obj | None:
            g = groups.get(gid)
            if g is None or (pred is not None and not pred(g)):
                return None
            return self._group_out(g, q.select, expand)

        count = None
        if self._count_if(req, q):

            def count() -> int:
                return sum(1 for g in groups.values() if pred is None or pred(g))

        return self._page(req, "groups", list(groups), view, q, count=count)

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
            out["members"] = [self._member_view(m, expand) for m in g["members"]]
        return out

    def _member_view(self, member: Obj, select: tuple[str, ...] | None) -> Obj:
        mid = member["id"]
        if member.get("@odata.type") == USER_TYPE and mid in self.state.users:
            return {"@odata.type": USER_TYPE, **user_view(self.state.users[mid], select)}
        group = self.state.groups.get(mid)
        if group is not None:
            return {"@odata.type": GROUP_TYPE, **group_view(group, select)}
        return {"@odata.type": member.get("@odata.type", USER_TYPE), "id": mid}

    async def get_group(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        body = self._group_out(self.state.group(gid), q.select, self._expand(q))
        return Resp(
            200,
            {"@odata.context": context_url(req.base_url, "groups", q.select) + "/$entity", **body},
        )

    async def delete_group(self, req: Req, gid: str) -> Resp:
        self.state.delete_group(gid, f"app:{req.app_id}")
        return Resp(204)

    async def get_deleted_item(self, req: Req, gid: str) -> Resp:
        group = self.state.deleted_group(gid)
        body = {
            "@odata.context": f"{req.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": "#microsoft.graph.group",
            **group_view(group, None),
            "deletedDateTime": group["deletedDateTime"],
        }
        return Resp(200, body)

    async def restore_deleted_item(self, req: Req, gid: str) -> Resp:
        group = self.state.restore_group(gid, f"app:{req.app_id}")
        body = {
            "@odata.context": f"{req.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": "#microsoft.graph.group",
            **group_view(group, None),
        }
        return Resp(200, body)

    async def group_members(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        group = self.state.group(gid)
        if q.filter:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        members = group["members"]
        return self._page(
            req, "directoryObjects", members, lambda m: self._member_view(m, q.select), q
        )

    async def group_errors(self, req: Req, gid: str) -> Resp:
        q = parse_query(req.params)
        self.state.group(gid)
        found = license_status.members_with_license_errors(gid, self.state.users, self.state.groups)
        ids = list(found)

        def view(uid: str) -> Obj | None:
            user = self.state.users.get(uid)
            return {"@odata.type": USER_TYPE, **user_view(user, q.select)} if user else None

        return self._page(req, "directoryObjects", ids, view, q)

    async def groups_delta(self, req: Req) -> Resp:
        return Resp(200, self.delta.handle(req.base_url, req.params))

    async def users_delta(self, req: Req) -> Resp:
        return Resp(200, self.users_delta_engine.handle(req.base_url, req.params))

    async def list_skus(self, req: Req) -> Resp:
        q = parse_query(req.params)
        if q.filter or q.top:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
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

        return self._page(req, "auditLogs/directoryAudits", entries, view, q)

    # ----------------------------------------------------------------- writes
    async def add_ref(self, req: Req, gid: str) -> Resp:
        body = req.json()
        ref = str(body.get("@odata.id", "")) if isinstance(body, dict) else ""
        m = re.search(r"/([0-9a-fA-F-]{36})\)?/?\Z", ref) or re.search(
            r"\('([0-9a-fA-F-]{36})'\)\Z", ref
        )
        if not m:
            raise bad_request("Invalid object identifier '" + ref + "'.")
        mid = m.group(1)
        known = next(
            (k for k in (mid, mid.lower()) if self.state.member_object(k) is not None), None
        )
        self.state.group(gid)
        if known is None:
            raise not_found(mid)
        self.state.add_member(gid, known, f"app:{req.app_id}")
        return Resp(204)

    async def remove_ref(self, req: Req, gid: str, mid: str) -> Resp:
        self.state.remove_member(gid, mid, f"app:{req.app_id}")
        return Resp(204)

    def _license_body(self, req: Req) -> tuple[list[Obj], list[str]]:
        body = req.json()
        if not isinstance(body, dict) or "addLicenses" not in body or "removeLicenses" not in body:
            raise bad_request("addLicenses and removeLicenses are required.")
        return list(body.get("addLicenses") or []), list(body.get("removeLicenses") or [])

    async def user_assign(self, req: Req, uid: str) -> Resp:
        add, remove = self._license_body(req)
        user = self.state.assign_user_license(uid, add, remove, f"app:{req.app_id}")
        return Resp(
            200,
            {
                "@odata.context": f"{req.base_url}/$metadata#users/$entity",
                **user_view(user, None),
                "accountEnabled": user.get("accountEnabled"),
                "assignedLicenses": user.get("assignedLicenses", []),
                "assignedPlans": user.get("assignedPlans", []),
            },
        )

    async def user_reprocess(self, req: Req, uid: str) -> Resp:
        user = self.state.reprocess_user(uid, f"app:{req.app_id}")
        body = {
            "@odata.context": f"{req.base_url}/$metadata#users/$entity",
            **user_view(user, None),
            **{k: user.get(k) for k in REPROCESS_EXTRA},
        }
        return Resp(200, body)

    async def group_assign(self, req: Req, gid: str) -> Resp:
        add, remove = self._license_body(req)
        group = self.state.set_group_licenses(gid, add, remove, f"app:{req.app_id}")
        body = {
            "@odata.context": f"{req.base_url}/$metadata#groups/$entity",
            **group_view(group, None),
            "assignedLicenses": group["assignedLicenses"],
        }
        return Resp(202, body, {"Location": f"{req.base_url}/groups/{gid}"})

    def _mailbox(self, uid: str) -> Obj:
        owner = self.state.users.get(uid) or self.state.users.get(
            self.state.upn_index.get(uid.lower(), "")
        )
        if owner is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{uid}' is invalid.")
        return owner

    async def create_draft(self, req: Req, uid: str) -> Resp:
        owner = self._mailbox(uid)
        draft = self.state.drafts.create(
            req.headers.get("content-type", ""), req.body, owner, self.state.clock.now()
        )
        body = {
            "@odata.context": f"{req.base_url}/$metadata#users('{owner['id']}')/messages/$entity",
            **{k: v for k, v in draft.items() if k not in ("entry", "ownerId")},
        }
        return Resp(201, body)

    async def send_draft(self, req: Req, uid: str, mid: str) -> Resp:
        owner = self._mailbox(uid)
        self.state.outbox.append(self.state.drafts.send(owner, mid, self.state.clock.now()))
        return Resp(202)

    async def list_drafts(self, req: Req, uid: str) -> Resp:
        return Resp(200, self.state.drafts.listed(self._mailbox(uid), req.params, req.base_url))

    async def send_mail(self, req: Req, uid: str) -> Resp:
        sender = self._mailbox(uid)
        entry = accept_mail(
            req.headers.get("content-type", ""), req.body, sender, self.state.clock.now()
        )
        self.state.outbox.append(entry)
        return Resp(202)
