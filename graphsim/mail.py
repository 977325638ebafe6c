"""sendMail: validates a message the way Exchange does (enough to reject malformed ones) and
turns it into an outbox entry tests can read back. A MIME message (base64, `text/plain`) is
parsed, so its entry carries the same fields as a JSON one (subject, the HTML or text body,
recipients, `x-` headers) plus the MIME text and its parts' content types."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import orjson

from .clock import iso
from .errors import GraphError

Obj = dict[str, Any]


def _invalid_mime() -> GraphError:
    return GraphError(
        400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
    )


def _b64(text: str) -> bytes:
    return base64.b64decode(text.strip().encode(), validate=True)


def _as_bool(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise GraphError(400, "ErrorInvalidRequest", "Invalid value for saveToSentItems.")


def _addresses(message: Obj, key: str) -> list[str]:
    out: list[str] = []
    for rec in message.get(key) or []:
        address = ((rec or {}).get("emailAddress") or {}).get("address")
        if not address or "@" not in str(address):
            raise GraphError(400, "ErrorInvalidRecipients", f"Invalid recipient in '{key}'.")
        out.append(str(address))
    return out


def accept_mail(content_type: str, body: bytes, sender: Obj, now: datetime) -> Obj:
    """Validate a sendMail request body and return the outbox entry (raises Graph's 400s)."""
    entry: Obj = {
        "id": str(uuid.uuid4()),
        "from": sender.get("userPrincipalName") or sender.get("mail") or sender["id"],
        "senderId": sender["id"],
        "sentDateTime": iso(now),
    }
    if content_type.lower().startswith("text/plain"):
        try:
            mime = _b64(body.decode("ascii"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise _invalid_mime() from None
        if not mime.strip():
            raise _invalid_mime()
        entry.update(_mime_fields(mime))
        entry.update(
            {"mime": mime.decode("utf-8", "replace"), "message": None, "saveToSentItems": True}
        )
        return entry
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise GraphError(400, "ErrorInvalidRequest", "Cannot read the request body.") from None
    if isinstance(payload, dict):
        # action parameters are case-insensitive (the SDK sends "Message"/"SaveToSentItems")
        payload = {str(k)[:1].lower() + str(k)[1:]: v for k, v in payload.items()}
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
        raise GraphError(400, "ErrorInvalidRequest", "The message parameter is required.")
    message: Obj = payload["message"]
    to = _addresses(message, "toRecipients")
    cc = _addresses(message, "ccRecipients")
    bcc = _addresses(message, "bccRecipients")
    if not (to or cc or bcc):
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is required, but none were found.",
        )
    body_obj = message.get("body") or {}
    content_kind = str(body_obj.get("contentType", "Text"))
    if content_kind.lower() not in ("text", "html"):
        raise GraphError(400, "ErrorInvalidRequest", f"Invalid body contentType '{content_kind}'.")
    attachments: list[Obj] = []
    for att in message.get("attachments") or []:
        kind = str(att.get("@odata.type", "")).lower()
        if kind != "#microsoft.graph.fileattachment":
            raise GraphError(400, "ErrorInvalidRequest", "Only fileAttachment is supported.")
        try:
            data = _b64(str(att.get("contentBytes", "")))
        except (binascii.Error, ValueError):
            raise GraphError(
                400, "ErrorInvalidRequest", "Invalid base64 string for attachment content."
            ) from None
        attachments.append(
            {
                "name": att.get("name"),
                "contentType": att.get("contentType"),
                "size": len(data),
                "contentBytes": att.get("contentBytes"),
            }
        )
    headers = []
    for h in message.get("internetMessageHeaders") or []:
        name = str((h or {}).get("name", ""))
        if not name.lower().startswith("x-"):
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        headers.append({"name": name, "value": h.get("value")})
    entry.update(
        {
            "subject": message.get("subject"),
            "bodyContentType": "HTML" if content_kind.lower() == "html" else "Text",
            "body": body_obj.get("content", ""),
            "toRecipients": to,
            "ccRecipients": cc,
            "bccRecipients": bcc,
            "attachments": attachments,
            "internetMessageHeaders": headers,
            "internetMessageId": message.get("internetMessageId"),
            "saveToSentItems": _as_bool(payload.get("saveToSentItems")),
            "message": message,
        }
    )
    return entry


def _mime_fields(mime: bytes) -> Obj:
    """Subject, body (HTML preferred, as Outlook shows it), recipients and `x-` headers."""
    parsed = message_from_bytes(mime, policy=policy.default)
    if not isinstance(parsed, EmailMessage):  # pragma: no cover - policy.default gives one
        raise _invalid_mime()
    to = [a for _, a in getaddresses(parsed.get_all("To") or []) if "@" in a]
    cc = [a for _, a in getaddresses(parsed.get_all("Cc") or []) if "@" in a]
    if not (to or cc):
        raise GraphError(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is required, but none were found.",
        )
    part = parsed.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part is not None else ""
    kind = "HTML" if part is not None and part.get_content_subtype() == "html" else "Text"
    return {
        "subject": parsed.get("Subject"),
        "bodyContentType": kind,
        "body": content,
        "toRecipients": to,
        "ccRecipients": cc,
        "bccRecipients": [],
        "attachments": [],
        "internetMessageHeaders": [
            {"name": k, "value": str(v)} for k, v in parsed.items() if k.lower().startswith("x-")
        ],
        "internetMessageId": parsed.get("Message-ID"),
        "mimeParts": [p.get_content_type() for p in parsed.walk()],
    }
