"""`FakeMailbox`: the Directory port's mail calls in memory (sendMail, drafts sent or deleted
by id).

It makes the checks Exchange (and graphsim) make before accepting a message, keeps drafts in
`drafts`, and records every accepted sendMail or sent draft in `sent_mail` (`sender`,
`message`, `saveToSentItems`; a sent draft adds `mime` and `draftId`). Test hands:
`fail_next_send_mail` (the next send fails with a status) and `lose_next_answer` (the call is
carried out, then its answer is lost).
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from shared.fakes.tenant import FakeTenant
from shared.ports.directory import JSON, DirectoryError

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""What one Graph request may carry (about 4 MB, Microsoft Q&A 1824204 on sendMail's 413;
the graph-facts notes mark the exact figure unconfirmed): a larger one is refused."""


def _mail_error(code: str, message: str) -> DirectoryError:
    return DirectoryError(400, code, message)


def _check_message(message: Any) -> None:
    """The checks Exchange (and graphsim) make before accepting a sendMail message."""
    if not isinstance(message, Mapping):
        raise _mail_error("ErrorInvalidRequest", "The message parameter is required.")
    found = 0
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        for rec in message.get(key) or []:
            address = ((rec or {}).get("emailAddress") or {}).get("address")
            if not address or "@" not in str(address):
                raise _mail_error("ErrorInvalidRecipients", f"Invalid recipient in '{key}'.")
            found += 1
    if not found:
        raise _mail_error(
            "ErrorInvalidRecipients", "At least one recipient is required, but none were found."
        )
    kind = str((message.get("body") or {}).get("contentType", "Text"))
    if kind.lower() not in ("text", "html"):
        raise _mail_error("ErrorInvalidRequest", f"Invalid body contentType '{kind}'.")
    for header in message.get("internetMessageHeaders") or []:
        name = str((header or {}).get("name", ""))
        if not name.lower().startswith("x-"):
            raise _mail_error(
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )


def _message_from_mime(mime: bytes) -> JSON:
    """Graph's view of a MIME draft: subject, HTML body, recipients, `x-` headers."""
    parsed = message_from_bytes(mime, policy=policy.default)
    if not isinstance(parsed, EmailMessage) or not parsed.keys():
        raise _mail_error("ErrorMimeContentInvalidBase64String", "Invalid MIME content.")
    part = parsed.get_body(preferencelist=("html", "plain"))
    html = part is not None and part.get_content_subtype() == "html"
    return {
        "subject": parsed.get("Subject"),
        "body": {
            "contentType": "HTML" if html else "Text",
            "content": part.get_content() if part is not None else "",
        },
        "toRecipients": [
            {"emailAddress": {"address": a}} for _, a in getaddresses(parsed.get_all("To") or [])
        ],
        "internetMessageHeaders": [
            {"name": k, "value": str(v)} for k, v in parsed.items() if k.lower().startswith("x-")
        ],
        "internetMessageId": parsed.get("Message-ID"),
    }


_FAIL_CODES = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


class FakeMailbox(FakeTenant):
    """Mail through one sender's mailbox, in memory."""

    def fail_next_send_mail(self, status: int, retry_after: float | None = None) -> None:
        """The next `send_mail` raises DirectoryError(status, ..., retry_after) and sends
        nothing. Calls queue up: call twice to fail the next two."""
        self._send_failures.append((status, retry_after))

    def lose_next_answer(self, method: str) -> None:
        """The next call of `method` (`create_draft`, `send_draft`) is carried out, then raises
        a transient DirectoryError, as when Graph's answer is lost. Calls queue up."""
        self._lost_answers.append(method)

    def _answer_lost(self, method: str) -> None:
        if method in self._lost_answers:
            self._lost_answers.remove(method)
            raise DirectoryError(503, "TransportError", "Simulated lost answer.")

    def _fail_if_told(self, what: str) -> None:
        """Raise the next failure queued by `fail_next_send_mail`, if any."""
        if self._send_failures:
            status, retry_after = self._send_failures.pop(0)
            code = _FAIL_CODES.get(status, f"HTTP{status}")
            raise DirectoryError(status, code, f"Simulated {what} failure.", retry_after)

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        self._count("send_mail")
        self._fail_if_told("sendMail")
        self._mailbox(sender)
        _check_message(message)
        self.sent_mail.append(
            {
                "sender": sender,
                "message": copy.deepcopy(message),
                "saveToSentItems": save_to_sent_items,
            }
        )

    def _mailbox(self, sender: str) -> None:
        known = sender in self.users or any(
            str(u.get("userPrincipalName", "")).lower() == sender.lower()
            for u in self.users.values()
        )
        if not known:
            raise DirectoryError(
                404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid."
            )

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        self._count("find_draft")
        self._mailbox(sender)
        for draft_id, draft in self.drafts.items():
            if draft["sender"] == sender and draft["internetMessageId"] == internet_message_id:
                return draft_id
        return None

    async def create_draft(self, sender: str, mime: bytes) -> str:
        self._count("create_draft")
        self._mailbox(sender)
        if len(base64.b64encode(mime)) > MAX_REQUEST_BYTES:  # the request's body, as sent
            raise DirectoryError(413, "RequestEntityTooLarge", "The request is too large.")
        message = _message_from_mime(mime)
        _check_message(message)
        draft_id = f"draft-{uuid.uuid4().hex}"
        self.drafts[draft_id] = {
            "sender": sender,
            "internetMessageId": message.get("internetMessageId") or f"<{draft_id}@fake>",
            "message": message,
            "mime": mime,
        }
        self._answer_lost("create_draft")
        return draft_id

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        self._count("send_draft")
        self._fail_if_told("send")
        draft = self._take_draft(sender, draft_id)
        if draft is None:
            return False
        self.sent_mail.append(
            {
                "sender": sender,
                "message": copy.deepcopy(draft["message"]),
                "saveToSentItems": True,
                "mime": draft["mime"],
                "draftId": draft_id,
            }
        )
        self._answer_lost("send_draft")
        return True

    async def delete_draft(self, sender: str, draft_id: str) -> bool:
        self._count("delete_draft")
        return self._take_draft(sender, draft_id) is not None

    def _take_draft(self, sender: str, draft_id: str) -> JSON | None:
        """The sender's draft, out of Drafts; None when it is not there (sent, deleted)."""
        self._mailbox(sender)
        draft = self.drafts.get(draft_id)
        if draft is None or draft["sender"] != sender:
            return None
        return self.drafts.pop(draft_id)
