"""Draft messages: create (JSON or MIME), send, delete, and list the Drafts folder filtered by
`internetMessageId`, as Exchange answers them through Graph.

Sources: https://learn.microsoft.com/graph/api/user-post-messages (201 and the message; MIME
as base64 with `Content-Type: text/plain`; the draft lands in Drafts),
https://learn.microsoft.com/graph/api/message-send (202; the draft leaves Drafts for Sent
Items, so its id then answers 404 `ErrorItemNotFound`),
https://learn.microsoft.com/graph/api/mailfolder-list-messages (`$filter`, `$select`, `$top`),
https://learn.microsoft.com/graph/api/message-delete (204, Mail.ReadWrite; 404 once gone).
A sent draft becomes an outbox entry, like a `sendMail`, so tests read both the same way.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import orjson

from .clock import iso
from .errors import GraphError
from .mail import accept_mail

Obj = dict[str, Any]

_FILTER = re.compile(r"\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)
_HIDDEN = ("entry", "ownerId")


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _view(draft: Obj, base_url: str, select: str | None) -> Obj:
    view = {k: v for k, v in draft.items() if k not in _HIDDEN}
    if select:
        wanted = {s.strip() for s in select.split(",") if s.strip()} | {"id"}
        view = {k: v for k, v in view.items() if k in wanted}
    return view


class Drafts:
    """The Drafts folders of the tenant's mailboxes (keyed by message id)."""

    def __init__(self) -> None:
        self.items: dict[str, Obj] = {}

    def create(self, content_type: str, body: bytes, owner: Obj, now: datetime) -> Obj:
        """Validate like sendMail does and keep the message as a draft; the 201 body."""
        if not content_type.lower().startswith("text/plain"):
            body = _as_send_mail_body(body)
        entry = accept_mail(content_type, body, owner, now)
        message_id = entry.get("internetMessageId") or f"<{uuid.uuid4().hex}@graphsim.local>"
        entry["internetMessageId"] = message_id
        draft_id = "AAMk" + uuid.uuid4().hex
        draft: Obj = {
            "id": draft_id,
            "createdDateTime": iso(now),
            "lastModifiedDateTime": iso(now),
            "internetMessageId": message_id,
            "subject": entry.get("subject"),
            "isDraft": True,
            "parentFolderId": "drafts",
            "toRecipients": [{"emailAddress": {"address": a}} for a in entry["toRecipients"]],
            "ownerId": owner["id"],
            "entry": entry,
        }
        self.items[draft_id] = draft
        return draft

    def send(self, owner: Obj, draft_id: str, now: datetime) -> Obj:
        """Remove the draft and return its outbox entry; 404 once sent (it left Drafts)."""
        draft = self.items.get(draft_id)
        if draft is None or draft["ownerId"] != owner["id"]:
            raise _not_found()
        del self.items[draft_id]
        entry: Obj = dict(draft["entry"])
        entry.update({"sentDateTime": iso(now), "draftId": draft_id, "saveToSentItems": True})
        return entry

    def delete(self, owner: Obj, draft_id: str) -> None:
        """DELETE .../messages/{id}: the draft is gone; 404 when it is not there (sent or
        deleted before)."""
        draft = self.items.get(draft_id)
        if draft is None or draft["ownerId"] != owner["id"]:
            raise _not_found()
        del self.items[draft_id]

    def listed(self, owner: Obj, params: dict[str, str], base_url: str) -> Obj:
        """GET .../mailFolders/drafts/messages: `$filter=internetMessageId eq '...'` only."""
        found = [d for d in self.items.values() if d["ownerId"] == owner["id"]]
        text = params.get("$filter")
        if text:
            match = _FILTER.fullmatch(text)
            if match is None:
                raise GraphError(
                    400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more "
                    "invalid nodes (graphsim supports internetMessageId eq '...')."
                )  # fmt: skip
            wanted = match.group(1).replace("''", "'")
            found = [d for d in found if d["internetMessageId"] == wanted]
        top = params.get("$top")
        if top is not None:
            if not top.isdigit():
                raise GraphError(400, "BadRequest", f"Invalid $top value '{top}'.")
            found = found[: int(top)]
        return {
            "@odata.context": f"{base_url}/$metadata#users('{owner['id']}')/mailFolders"
            "('drafts')/messages",
            "value": [_view(d, base_url, params.get("$select")) for d in found],
        }


def _as_send_mail_body(body: bytes) -> bytes:
    """A JSON create body is a message; accept_mail reads sendMail's `{"message": ...}`."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise GraphError(400, "ErrorInvalidRequest", "Cannot read the request body.") from None
    if not isinstance(payload, dict):
        raise GraphError(400, "ErrorInvalidRequest", "The message body must be an object.")
    return orjson.dumps({"message": payload})
