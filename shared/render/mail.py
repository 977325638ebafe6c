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
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2

from shared.core.links import ENTRA_ADMIN, M365_ADMIN
from shared.core.wording import counted
from shared.render.channel_finding import ChannelFinding

TEMPLATES: Final = Path(__file__).parent / "templates"
MAX_NAMED_USERS: Final = 20
MAX_MAIL_BYTES: Final = 900_000
"""HTML and text together, in UTF-8 bytes (not characters: a Chinese name takes three bytes
a character). Python's MIME picks each part's transfer encoding from its first lines, so a
part that starts in ASCII is quoted-printable: at worst three bytes a byte (`=E8`, `=3D`) and
a soft line break every 76; Graph then gets the message in base64 (4/3). At most ~3.7 MB and
the headers: under the ~4 MB one Graph request carries (Microsoft Q&A 1824204; a larger
draft is refused with 413, at every retry)."""
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
    whole: MailView | None = field(default=None, compare=False, repr=False)
    """The view before lines were left out to fit Graph's size (`view` is what fitted), when
    any were: the generic webhook's `sections` are uncut."""


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
    severities: tuple[str, ...] = ()
    """Each row's severity when the table has no Severity column but its rows have one (the
    digest's resolved list): not shown in the mail; the channels list only the rows at or
    above their minimum severity, as they do for a table whose first column is Severity."""

    def __post_init__(self) -> None:
        if self.severities and len(self.severities) != len(self.rows):
            raise ValueError("a table's severities: none, or one for each row")


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
    """The mail; rows and table lines past `MAX_MAIL_BYTES` are left out and counted (see
    `_fitted`)."""
    html, text = _parts(view, mail_id, subject)
    whole = None
    if _size(html, text) > MAX_MAIL_BYTES:
        whole = view
        view, html, text = _fitted(view, mail_id, subject)
    return Mail(
        id=mail_id,
        kind=kind,
        subject=subject,
        html=html,
        text=text,
        headers=((DIGEST_HEADER, mail_id),),
        view=view,
        findings=tuple(findings),
        whole=whole,
    )


def _parts(view: MailView, mail_id: str, subject: str) -> tuple[str, str]:
    env = _environment()
    context: dict[str, Any] = {"view": view, "mail_id": mail_id, "subject": subject}
    return (
        env.get_template("mail.html.j2").render(context),
        env.get_template("mail.txt.j2").render(context),
    )


def _size(html: str, text: str) -> int:
    return len(html.encode()) + len(text.encode())


def _fitted(view: MailView, mail_id: str, subject: str) -> tuple[MailView, str, str]:
    """The view cut to keep the mail within `MAX_MAIL_BYTES`: each section's grouped rows and
    each table are a part, and every part keeps at most the same number of its first lines,
    the most that fit, so a long part (thousands of configuration drift lines) cannot crowd
    out the others. A part cut short says how many lines it left out."""
    longest = max((n for s in view.sections for n in _part_sizes(s)), default=0)
    low, high = 0, max(0, longest - 1)  # the most lines a part keeps is in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        html, text = _parts(_first_lines(view, mid), mail_id, subject)
        if _size(html, text) <= MAX_MAIL_BYTES:
            low = mid
        else:
            high = mid - 1
    fitted = _first_lines(view, low)
    return (fitted, *_parts(fitted, mail_id, subject))


def _part_sizes(section: Section) -> tuple[int, int]:
    return len(section.items), len(section.table.rows) if section.table else 0


def _first_lines(view: MailView, kept: int) -> MailView:
    """Each section with at most `kept` of its grouped rows and `kept` of its table's lines."""
    sections = []
    for section in view.sections:
        rows_left, lines_left = (max(0, n - kept) for n in _part_sizes(section))
        notes = []
        if rows_left:
            notes.append(
                f"{counted(rows_left, 'more line')} left out to keep this mail within the size "
                "Microsoft Graph accepts; the nightly report page lists every finding."
            )
        if lines_left and section.table is not None:
            notes.append(
                f"… {lines_left} more rows: see the report page (left out of the table below "
                "to keep this mail within the size Microsoft Graph accepts)."
            )
            table = section.table
            section = replace(
                section,
                table=replace(table, rows=table.rows[:kept], severities=table.severities[:kept]),
            )
        if notes:
            section = replace(
                section, items=section.items[:kept], paragraphs=(*section.paragraphs, *notes)
            )
        sections.append(section)
    return replace(view, sections=tuple(sections))


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
