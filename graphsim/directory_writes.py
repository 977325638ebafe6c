"""The Graph writes graphsim serves: member references, `assignLicense` (users and groups),
`reprocessLicenseAssignment`, group deletion and restore from the deleted items; each answers
with the status and body Graph documents (204, 200 with the user, 202 with the group)."""

from __future__ import annotations

import re
from typing import Any

from .errors import bad_request, not_found
from .graph_views import REPROCESS_EXTRA, group_view, user_view
from .state import SimState
from .wire import Req, Resp

Obj = dict[str, Any]


class DirectoryWrites:
    """POST/DELETE handlers that change the tenant (`Req -> Resp`, transport-free)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

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
        self.state.writable_user(uid)
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
        self.state.writable_user(uid)
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

    async def delete_group(self, req: Req, gid: str) -> Resp:
        self.state.delete_group(gid, f"app:{req.app_id}")
        return Resp(204)

    async def restore_deleted_item(self, req: Req, gid: str) -> Resp:
        group = self.state.restore_group(gid, f"app:{req.app_id}")
        body = {
            "@odata.context": f"{req.base_url}/$metadata#directoryObjects/$entity",
            "@odata.type": "#microsoft.graph.group",
            **group_view(group, None),
        }
        return Resp(200, body)
