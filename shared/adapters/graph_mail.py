"""`GraphMailbox`: the Directory port's mail calls (sendMail, and drafts sent or deleted by id).

Alerts go out as a MIME draft created in the sender's mailbox and then sent, so a lost answer
can be settled by looking the draft up by its `internetMessageId` (docs/reliability.md).
"""

from __future__ import annotations

import base64

import orjson
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation

from shared.adapters.graph_paths import (
    SDK_USER_KEY_FORM,
    SDK_USER_SEGMENT,
    key_literal,
    needs_key_form,
)
from shared.adapters.graph_transport import GraphTransport
from shared.ports.directory import JSON, DirectoryError


def odata_str(value: str) -> str:
    """A string literal's content in an OData $filter (single quotes doubled)."""
    return value.replace("'", "''")


def in_mailbox(info: RequestInformation, sender: str) -> RequestInformation:
    """`info` (built on `users.by_user_id(sender)`) naming a sender that starts with `$` in
    Graph's key form (`graph_paths`): `/users/$svc@contoso.com/sendMail` is Graph's 400."""
    if needs_key_form(sender):
        info.url_template = (info.url_template or "").replace(SDK_USER_SEGMENT, SDK_USER_KEY_FORM)
        info.path_parameters["user%2Did"] = key_literal(sender)
    return info


class GraphMailbox(GraphTransport):
    """Mail through one sender's mailbox (`Mail.Send`)."""

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
        await self._send(in_mailbox(info, sender))

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        """GET .../mailFolders/drafts/messages?$filter=internetMessageId eq '<id>'&$select=id
        (a filterable message property; mailfolder-list-messages)."""
        builder = (
            self._client.users.by_user_id(sender).mail_folders.by_mail_folder_id("drafts").messages
        )
        params = builder.MessagesRequestBuilderGetQueryParameters(
            filter=f"internetMessageId eq '{odata_str(internet_message_id)}'",
            select=["id"],
            top=10,
        )
        info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        found = (await self._send(in_mailbox(info, sender))).get("value") or []
        return str(found[0]["id"]) if found else None

    async def create_draft(self, sender: str, mime: bytes) -> str:
        """POST /users/{sender}/messages, MIME form: base64 body, `Content-Type: text/plain`
        (user-post-messages). Not repeated on a transport error: the caller looks first."""
        builder = self._client.users.by_user_id(sender).messages
        info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
        info.headers.try_add("Accept", "application/json")
        info.set_stream_content(base64.b64encode(mime), "text/plain")
        created = await self._send(in_mailbox(info, sender), idempotent=False)
        if not created.get("id"):
            raise DirectoryError(502, "UnexpectedBody", "Graph created a draft without an id")
        return str(created["id"])

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        builder = self._client.users.by_user_id(sender).messages.by_message_id(draft_id).send
        info = RequestInformation(Method.POST, builder.url_template, builder.path_parameters)
        return await self._on_draft(in_mailbox(info, sender), idempotent=False)

    async def delete_draft(self, sender: str, draft_id: str) -> bool:
        """DELETE /users/{sender}/messages/{id} (message-delete; `Mail.ReadWrite`)."""
        builder = self._client.users.by_user_id(sender).messages.by_message_id(draft_id)
        info = RequestInformation(Method.DELETE, builder.url_template, builder.path_parameters)
        return await self._on_draft(in_mailbox(info, sender), idempotent=True)

    async def _on_draft(self, info: RequestInformation, *, idempotent: bool) -> bool:
        """A call on one draft: True, or False when it is no longer in the mailbox (404
        `ErrorItemNotFound`)."""
        info.headers.try_add("Accept", "application/json")
        try:
            await self._send(info, idempotent=idempotent)
        except DirectoryError as error:
            if error.status == 404 and error.code == "ErrorItemNotFound":
                return False
            raise
        return True
