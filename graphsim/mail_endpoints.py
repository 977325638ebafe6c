"""The Graph mail endpoints graphsim serves: `sendMail`, drafts (`POST messages`, `send`,
`DELETE`) and the drafts folder listing; sent mail lands in the simulator's outbox."""

from __future__ import annotations

from typing import Any

from .errors import GraphError
from .mail import accept_mail
from .state import SimState
from .wire import Req, Resp

Obj = dict[str, Any]


class MailEndpoints:
    """Mailbox handlers (`Req -> Resp`, transport-free); the mailbox owner must exist."""

    def __init__(self, state: SimState) -> None:
        self.state = state

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

    async def delete_draft(self, req: Req, uid: str, mid: str) -> Resp:
        self.state.drafts.delete(self._mailbox(uid), mid)
        return Resp(204)

    async def list_drafts(self, req: Req, uid: str) -> Resp:
        return Resp(200, self.state.drafts.listed(self._mailbox(uid), req.params, req.base_url))

    async def send_mail(self, req: Req, uid: str) -> Resp:
        sender = self._mailbox(uid)
        entry = accept_mail(
            req.headers.get("content-type", ""), req.body, sender, self.state.clock.now()
        )
        self.state.outbox.append(entry)
        return Resp(202)
