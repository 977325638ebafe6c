"""Alert mails as values: subject, HTML and plain text (Jinja2, autoescaped), and headers; the
view they are rendered from (`MailView`, also what Teams and Slack get) and their MIME form.
The mails themselves are composed in `shared.render.alert_mails`, their lines in
`shared.render.mail_rows`.

Every mail is one `MailView` rendered by `templates/mail.html.j2` (inline CSS, table layout
that Outlook and browsers render alike) and `templates/mail.txt.j2`. Everything that comes
from the directory (display names, UPNs, group names, messages) is escaped in the HTML part by
Jinja2's autoescape; nothing is marked safe. No attachments, no links to bulk personal data:
at most `MAX_NAMED_USERS` users are named per row, then "and N more".
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2

from shared.core.links import ENTRA_ADMIN, M365_ADMIN
from shared.render.channel_finding import ChannelFinding

TEMPLATES: Final = Path(__file__).parent / "templates"
MAX_NAMED_USERS: Final = 20
DIGEST_HEADER: Final = "x-license-guard-digest"
LINKS: Final = (
    ("Microsoft 365 admin center (licenses, products, billing)", M365_ADMIN),
    ("Microsoft Entra admin center (groups, users, audit log)", ENTRA_ADMIN),
)


@dataclass(frozen=True, slots=True)
class Mail:
    id: str
    kind: str
    subject: str
    html: str
    text: str
    headers: tuple[tuple[str, str], ...] = ()
    view: MailView | None = field(default=None, compare=False, repr=False)
    """What was rendered: the alert channels (Teams, Slack) build their payloads from it."""
    findings: tuple[ChannelFinding, ...] = field(default=(), compare=False, repr=False)
    """The findings it is about, for the generic webhook."""


@dataclass(frozen=True, slots=True)
class UserName:
    display_name: str
    upn: str
    url: str = ""
    """The user's licenses page in the Microsoft 365 admin center (where the fix is made)."""


@dataclass(frozen=True, slots=True)
class MailNames:
    """Readable names for what the ledger holds as ids."""

    tenant_name: str = "your tenant"
    users: Mapping[str, UserName] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    products: Mapping[str, str] = field(default_factory=dict)

    def user(self, user_id: str) -> UserName:
        return self.users.get(user_id) or UserName(user_id, "")

    def group(self, group_id: str | None) -> str:
        if not group_id:
            return "-"
        return self.groups.get(group_id, group_id)

    def product(self, sku_id: str | None) -> str:
        if not sku_id:
            return "-"
        return self.products.get(sku_id, sku_id)


@dataclass(frozen=True, slots=True)
class RowView:
    """One group x SKU x code line."""

    severity: str
    code: str
    group: str
    product: str
    count: int
    users: tuple[UserName, ...]
    more: int
    cause: str
    example: str
    """One finding's own message; empty when it would only repeat `cause`."""
    fix: str
    action: str
    url: str = ""
    """Where the fix is made: the group's page, Billing > Licenses for a product, or the
    user's licenses page for a direct assignment."""
    more_is_minimum: bool = False
    """`more` is the fewest users there can be (samples of the ledger's rows may overlap)."""

    @property
    def more_text(self) -> str:
        return more_users(self.more, minimum=self.more_is_minimum)


def more_users(count: int, *, minimum: bool = False) -> str:
    """'and N more' after the named users; 'at least N' when N is only the fewest."""
    return f"and {'at least ' if minimum else ''}{count} more"


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[RowView, ...] = ()
    table: Table | None = None


@dataclass(frozen=True, slots=True)
class MailView:
    title: str
    tenant: str
    lead: tuple[str, ...]
    sections: tuple[Section, ...]
    footer: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = LINKS


# --------------------------------------------------------------------------- rendering


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    view: MailView,
    *,
    mail_id: str,
    kind: str,
    subject: str,
    findings: Sequence[ChannelFinding] = (),
) -> Mail:
    env = _environment()
    context: dict[str, Any] = {"view": view, "mail_id": mail_id, "subject": subject}
    return Mail(
        id=mail_id,
        kind=kind,
        subject=subject,
        html=env.get_template("mail.html.j2").render(context),
        text=env.get_template("mail.txt.j2").render(context),
        headers=((DIGEST_HEADER, mail_id),),
        view=view,
        findings=tuple(findings),
    )


def mime(
    mail: Mail,
    sender: str,
    recipients: Sequence[str],
    at: datetime,
    *,
    message_id: str | None = None,
) -> bytes:
    """The mail as multipart/alternative MIME (plain text and HTML): what Graph sends (a MIME
    draft) and what a .eml file holds. `message_id` fixes the Message-ID (delivery looks the
    draft up by it); a fresh one otherwise."""
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in mail.headers:
        message[name] = value
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return bytes(message)


def mime_base64(mail: Mail, sender: str, recipients: Sequence[str], at: datetime) -> str:
    return base64.b64encode(mime(mail, sender, recipients, at)).decode("ascii")
