"""The Graph v1.0 endpoints graphsim serves, as a small router over `Req -> Resp`.

Handlers are transport-free so that `$batch` items run through exactly the same path (auth
aside) as top-level requests: faults, throttling, counting and error shapes included.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from .directory_reads import DirectoryReads
from .directory_writes import DirectoryWrites
from .errors import GraphError, error_body, throttled_body
from .faults import AFTER_HANDLER, Faults
from .mail_endpoints import MailEndpoints
from .notify import Notifier
from .paging import empty_first_page, stuck_page
from .state import SimState
from .subscriptions import SubscriptionService
from .throttle import Throttle, request_cost
from .wire import Req, Resp

Obj = dict[str, Any]
Handler = Callable[..., Awaitable[Resp]]
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


_KEY_FORM = re.compile(r"/users\('((?:[^']|'')*)'\)(/.*)?", re.I)


def key_form(path: str) -> tuple[str, bool]:
    """`/users('{key}')...` as `/users/{key}...` (a doubled quote in the key undone), and
    whether the path was in that form: the one Graph takes a UPN starting with `$` in."""
    found = _KEY_FORM.fullmatch(path)
    if found is None:
        return path, False
    key = found.group(1).replace("''", "'")
    return f"/users/{key}{found.group(2) or ''}", True


async def dollar_segment(req: Req, *args: str) -> Resp:
    """`/users/$x@y.com`: Graph reads a segment starting with `$` as a system segment, so a
    UPN that starts with one fails 400 unless given as `/users('$x@y.com')`
    (learn.microsoft.com/graph/api/user-get, "When the userPrincipalName begins with a $")."""
    raise GraphError(
        400,
        "BadRequest",
        "The request URI is not valid. Since the segment 'users' refers to a collection, this "
        "must be the last segment in the request URI or it must be followed by an function or "
        "action that can be bound to it otherwise all intermediate segments must refer to a "
        "single resource.",
    )


def path_id(segment: str) -> str:
    """A GUID in the path as graphsim stores it, lower-case: Graph finds a directory object or a
    subscription by its id in any case (an admin pastes one upper-case from PowerShell) and
    answers with its own. Other ids (mail messages: case-sensitive) and UPNs as they are."""
    return segment.lower() if _GUID.fullmatch(segment) else segment


def retry_after_header(seconds: float) -> str:
    """Retry-After as Graph writes it: whole seconds ("1"), or fractional ("2.128", the 429
    example on learn.microsoft.com/graph/throttling)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


class GraphApi:
    """Routes and dispatch; owns the throttle and faults. Handlers live in DirectoryReads,
    DirectoryWrites, MailEndpoints and SubscriptionService."""

    def __init__(
        self, state: SimState, notifier: Notifier, throttle: Throttle, faults: Faults
    ) -> None:
        self.state = state
        self.notifier = notifier
        self.throttle = throttle
        self.faults = faults
        reads = DirectoryReads(state)
        writes = DirectoryWrites(state)
        mail = MailEndpoints(state)
        self.subs = SubscriptionService(state, notifier)
        r = self._route
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        r("GET", "/users/delta", reads.users_delta)
        r("GET", "/users", reads.list_users)
        r("GET", "/users/$count", reads.count_users)
        r("GET", "/users/{id}", reads.get_user)
        r("GET", "/users/{id}/memberOf", reads.user_member_of)
        r("POST", "/users/{id}/assignLicense", writes.user_assign)
        r("POST", "/users/{id}/reprocessLicenseAssignment", writes.user_reprocess)
        r("POST", "/users/{id}/sendMail", mail.send_mail)
        r("POST", "/users/{id}/messages", mail.create_draft)
        r("POST", "/users/{id}/messages/{id}/send", mail.send_draft)
        r("DELETE", "/users/{id}/messages/{id}", mail.delete_draft)
        r("GET", "/users/{id}/mailFolders/drafts/messages", mail.list_drafts)
        r("GET", "/groups/delta", reads.groups_delta)
        r("GET", "/groups", reads.list_groups)
        r("GET", "/groups/{id}", reads.get_group)
        r("DELETE", "/groups/{id}", writes.delete_group)
        r("GET", "/groups/{id}/members", reads.group_members)
        r("GET", "/groups/{id}/membersWithLicenseErrors", reads.group_errors)
        r("POST", "/groups/{id}/members/$ref", writes.add_ref)
        r("DELETE", "/groups/{id}/members/{id}/$ref", writes.remove_ref)
        r("POST", "/groups/{id}/assignLicense", writes.group_assign)
        r("GET", "/directory/deletedItems/{id}", reads.get_deleted_item)
        r("POST", "/directory/deletedItems/{id}/restore", writes.restore_deleted_item)
        r("GET", "/subscribedSkus", reads.list_skus)
        r("GET", "/organization", reads.list_org)
        r("GET", "/auditLogs/directoryAudits", reads.list_audits)
        r("GET", "/servicePrincipals/{id}/appRoleAssignments", reads.app_role_assignments)
        r("GET", "/subscriptions", self.subs.list)
        r("POST", "/subscriptions", self.subs.create)
        r("GET", "/subscriptions/{id}", self.subs.get)
        r("PATCH", "/subscriptions/{id}", self.subs.update)
        r("DELETE", "/subscriptions/{id}", self.subs.delete)
        r("POST", "/subscriptions/{id}/reauthorize", self.subs.reauthorize)

    def _route(self, method: str, template: str, handler: Handler) -> None:
        """One route by its template: `{id}` matches one path segment, a trailing slash is
        allowed, and a delta function may also be called as `delta()`."""
        pattern = re.escape(template).replace(re.escape("{id}"), "([^/]+)")
        if template.endswith("/delta"):
            pattern += r"(?:\(\))?"
        self.routes.append((method, re.compile(f"{pattern}/?", re.I), template, handler))

    def match(self, method: str, path: str) -> tuple[str, Handler | None, tuple[str, ...]]:
        """(template, handler, path args); handler None with a template means wrong method.
        A user key starting with `$` is Graph's 400 unless in the key form (`key_form`)."""
        seen = ""
        path, keyed = key_form(path)
        for m, pattern, template, handler in self.routes:
            found = pattern.fullmatch(path)
            if found:
                if m == method.upper():
                    args = tuple(path_id(arg) for arg in found.groups())
                    if template.startswith("/users/{id}") and args[0][:1] == "$" and not keyed:
                        return template, dollar_segment, args
                    return template, handler, args
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
        decision = self.throttle.check(
            req.app_id,
            self.state.tenant_id,
            cost,
            write,
            priority,
            reports=template.startswith("/auditLogs/"),
        )
        if not decision.allowed:
            return self.too_many(req, decision.retry_after, decision.scope, decision.information)
        try:
            resp = await handler(req, *args)
        except GraphError as exc:
            resp = self.error(req, exc)
        if template in self.faults.empty_first_pages:
            resp = empty_first_page(req, self.state, resp)
        f = self.faults
        if template in (*f.stuck_pages, *f.endless_pages, *f.cycling_pages):
            kind = "endless" if template in f.endless_pages else "stuck"
            resp = stuck_page(req, resp, kind="cycling" if template in f.cycling_pages else kind)
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
            {"Retry-After": retry_after_header(self.faults.retry_after)},
        )

    def too_many(self, req: Req, retry_after: float, scope: str, info: str) -> Resp:
        headers = {"Retry-After": retry_after_header(retry_after)}
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
