"""Alert mails as values: subject, HTML and plain text (Jinja2, autoescaped), and headers.

Every mail is one `MailView` rendered by `templates/mail.html.j2` (inline CSS, table layout
that Outlook and browsers render alike) and `templates/mail.txt.j2`. Everything that comes
from the directory (display names, UPNs, group names, messages) is escaped in the HTML part by
Jinja2's autoescape; nothing is marked safe. No attachments, no links to bulk personal data:
at most `MAX_NAMED_USERS` users are named per row, then "and N more".
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2

from shared.core.alerting import LedgerRow, RowGroup, group_rows
from shared.core.links import (
    ENTRA_ADMIN,
    M365_ADMIN,
    finding_url,
    group_license_url,
    user_license_url,
)
from shared.core.nightly_summary import NightlySummary
from shared.render.channel_finding import ChannelFinding, channel_findings

TEMPLATES: Final = Path(__file__).parent / "templates"
MAX_NAMED_USERS: Final = 20
DIGEST_HEADER: Final = "x-license-guard-digest"
LINKS: Final = (
    ("Microsoft 365 admin center (licenses, products, billing)", M365_ADMIN),
    ("Microsoft Entra admin center (groups, users, audit log)", ENTRA_ADMIN),
)

CAUSES: Final = {
    "CountViolation": "No free seats were left when Entra tried to assign the license.",
    "MutuallyExclusiveViolation": (
        "A service plan of this license conflicts with a plan the user already holds from "
        "another license."
    ),
    "DependencyViolation": (
        "Entra kept the license instead of removing it, because another plan the user holds "
        "depends on it."
    ),
    "ProhibitedInUsageLocationViolation": (
        "The product may not be used in the user's usage location."
    ),
    "UniquenessViolation": "A proxy address of the user is already used by another object.",
    "Other": "Entra reported an unclassified error; the Entra audit log has the reason.",
    "PendingGroupAssignment": (
        "The user is in a licensing group that finished processing, but Graph shows no license "
        "from it."
    ),
    "StaleGroupAssignment": (
        "Graph still shows a license from a group the user left (or that dropped the product)."
    ),
    "PlanMismatch": "The user's enabled service plans differ from what the group enables.",
    "DataLossRisk": (
        "The user no longer holds a mailbox or OneDrive storage through any path: the data is "
        "deleted once the retention period ends."
    ),
    "SeatShortfall": "More users should hold the product than there are seats.",
    "SubscriptionAtRisk": (
        "Seats of a product in use are in warning, suspended or locked-out state: the "
        "subscription is lapsing."
    ),
    "DirectorySyncStale": "Entra Connect has not synced for more than three cycles.",
    "NotificationsSilent": "Group change notifications are not reaching License Guard.",
    "SubscriptionMissing": "License Guard has no change-notification subscription.",
    "PoisonedMessage": "A queue message failed every attempt and was set aside.",
    "AlertRecipientsRefused": "Alert recipients outside the tenant's verified domains.",
    "AlertChannelFailing": "An alert channel (Teams, Slack or a webhook) keeps refusing posts.",
}


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


# --------------------------------------------------------------------------- rows


def row_views(
    rows: Iterable[LedgerRow],
    names: MailNames,
    action: Mapping[tuple[str | None, str | None, str], str] | None = None,
) -> tuple[RowView, ...]:
    """Group x SKU x code lines, at most MAX_NAMED_USERS named users each."""
    views = []
    for rg in group_rows(rows):
        views.append(_row_view(rg, names, (action or {}).get((rg.group_id, rg.sku_id, rg.code))))
    return tuple(views)


def _row_view(rg: RowGroup, names: MailNames, action: str | None) -> RowView:
    user_ids = rg.user_ids
    first = rg.rows[0]
    cause = CAUSES.get(rg.code, first.message)
    users = tuple(
        UserName(n.display_name, n.upn, user_license_url(u))
        for u in user_ids[:MAX_NAMED_USERS]
        for n in (names.user(u),)
    )
    return RowView(
        severity=rg.severity,
        code=rg.code,
        group=names.group(rg.group_id) if rg.group_id else _subject_label(first.subject),
        product=names.product(rg.sku_id),
        count=len(rg.rows),
        users=users,
        more=max(0, len(user_ids) - MAX_NAMED_USERS),
        cause=cause,
        example="" if first.message == cause else first.message,
        fix=first.remedy,
        action=action or "",
        url=_row_url(rg.group_id, first.subject),
    )


def _row_url(group_id: str | None, subject: str) -> str:
    """Where a row's fix is made; none for the service's own subjects (queue:, service:)."""
    if group_id:
        return group_license_url(group_id)
    if ":" not in subject or subject.startswith(("sku:", "group:")):
        return finding_url(subject, None)
    return ""


def _subject_label(subject: str) -> str:
    if ":" not in subject:
        return "direct assignment"
    kind, _, rest = subject.partition(":")
    return {"sku": "tenant", "queue": f"queue {rest}", "service": f"service ({rest})"}.get(
        kind, subject
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- mails


def digest_mail(
    *,
    mail_id: str,
    names: MailNames,
    new: Sequence[LedgerRow],
    resolved: Sequence[LedgerRow],
    still_open: int,
    waiting: Mapping[str, int],
    muted: int,
    actions: Mapping[tuple[str | None, str | None, str], str],
    mode_note: str,
    since: str | None,
    first_since: str = "License Guard started watching",
) -> Mail:
    """`since`: when the last digest went out; None for the first, which covers the changes
    since `first_since`."""
    subject = (
        f"License Guard · {names.tenant_name}: {_plural(len(new), 'new issue')}, "
        f"{len(resolved)} resolved, {still_open + len(new)} open"
    )
    waiting_text = ", ".join(
        f"{n} {label}"
        for kind, label in (
            ("processing", "waiting for Entra to finish processing a group"),
            ("swap", "in a SKU swap (user in both groups)"),
            ("grace", "within the grace period"),
        )
        if (n := waiting.get(kind, 0))
    )
    lead = [
        (f"Changes since the last digest ({since})" if since else f"Changes since {first_since}")
        + f": {_plural(len(new), 'new issue')} to act on, "
        f"{len(resolved)} resolved. Still open and already reported: {still_open}.",
    ]
    if waiting_text:
        lead.append(f"Not alerted yet: {waiting_text}.")
    if muted:
        lead.append(f"{muted} open finding(s) are muted by exclusions (still in the reports).")
    sections = []
    if new:
        sections.append(
            Section("New issues", items=row_views(new, names, actions)),
        )
    if resolved:
        sections.append(_resolved_section(resolved, names))
    return render(
        MailView(
            "License Guard digest",
            names.tenant_name,
            tuple(lead),
            tuple(sections),
            footer=(mode_note,),
        ),
        mail_id=mail_id,
        kind="digest",
        subject=subject,
        findings=[
            *channel_findings(new, names, "new"),
            *channel_findings(resolved, names, "resolved"),
        ],
    )


def _resolved_section(rows: Sequence[LedgerRow], names: MailNames) -> Section:
    table_rows = []
    for rg in group_rows(rows):
        users = [names.user(u).display_name for u in rg.user_ids]
        shown = ", ".join(users[:MAX_NAMED_USERS])
        if len(users) > MAX_NAMED_USERS:
            shown += f" and {len(users) - MAX_NAMED_USERS} more"
        group = names.group(rg.group_id) if rg.group_id else _subject_label(rg.rows[0].subject)
        table_rows.append((rg.code, group, names.product(rg.sku_id), str(len(rg.rows)), shown))
    return Section(
        "Resolved since the last digest",
        table=Table(("Issue", "Group", "Product", "Count", "Users"), tuple(table_rows)),
    )


def immediate_mail(
    *,
    mail_id: str,
    names: MailNames,
    title: str,
    rows: Sequence[LedgerRow],
    lead: Sequence[str],
    actions: Mapping[tuple[str | None, str | None, str], str] | None = None,
    extra: Sequence[Section] = (),
    mode_note: str = "",
) -> Mail:
    subject = f"License Guard · {names.tenant_name}: {title}"
    sections = (Section("What happened", items=row_views(rows, names, actions)), *extra)
    return render(
        MailView(
            title,
            names.tenant_name,
            tuple(lead),
            sections,
            footer=(mode_note,) if mode_note else (),
        ),
        mail_id=mail_id,
        kind="immediate",
        subject=subject,
        findings=channel_findings(rows, names, "new"),
    )


def counts_table(rows: Iterable[LedgerRow], names: MailNames) -> Table:
    """Group x SKU x code with counts and severity (no user names)."""
    lines = []
    for rg in group_rows(rows):
        group = names.group(rg.group_id) if rg.group_id else _subject_label(rg.rows[0].subject)
        lines.append((rg.severity, rg.code, group, names.product(rg.sku_id), str(len(rg.rows))))
    return Table(("Severity", "Issue", "Group", "Product", "Count"), tuple(lines))


def baseline_mail(*, mail_id: str, names: MailNames, rows: Sequence[LedgerRow]) -> Mail:
    subject = (
        f"License Guard · {names.tenant_name}: baseline, {_plural(len(rows), 'existing issue')}"
    )
    lead = (
        f"Baseline: {_plural(len(rows), 'existing issue')}, by group × product × issue. "
        "License Guard recorded them and queued no reprocess; from now on the digests report "
        "only what changes after this baseline.",
    )
    section = Section("Existing issues", table=counts_table(rows, names))
    return render(
        MailView("License Guard baseline", names.tenant_name, lead, (section,)),
        mail_id=mail_id,
        kind="baseline",
        subject=subject,
    )


def weekly_mail(*, mail_id: str, names: MailNames, rows: Sequence[LedgerRow], week: str) -> Mail:
    subject = (
        f"License Guard · {names.tenant_name}: weekly summary {week}, "
        f"{_plural(len(rows), 'standing finding')}"
    )
    lead = (
        "Standing information that needs no urgent action: nested groups that license nobody, "
        "users without a usage location, disabled accounts that still hold seats, direct "
        "assignments a group already covers.",
    )
    return render(
        MailView(
            "License Guard weekly summary",
            names.tenant_name,
            lead,
            (Section("Standing findings", items=row_views(rows, names)),),
        ),
        mail_id=mail_id,
        kind="weekly",
        subject=subject,
    )


def nightly_mail(*, mail_id: str, summary: NightlySummary) -> Mail:
    total = sum(summary.findings_by_code.values())
    subject = (
        f"License Guard · {summary.tenant_name}: nightly summary {summary.date}, "
        f"{_plural(total, 'open finding')}, {summary.new_findings} new, "
        f"{summary.resolved_findings} resolved"
    )
    lead = [
        f"Reconciliation {summary.run_id}: {summary.users_scanned} users scanned from "
        f"{summary.started_at} to {summary.finished_at}; {summary.new_findings} new and "
        f"{summary.resolved_findings} resolved findings.",
    ]
    if summary.baseline:
        lead.append("This was the baseline run: everything was recorded, nothing reprocessed.")
    if summary.data_loss_risks:
        lead.append(
            f"Data-loss risks: {summary.data_loss_risks} user(s) would lose a mailbox or "
            "OneDrive storage; see the immediate alerts and the digest."
        )
    if summary.self_check_agreement is not None:
        lead.append(
            f"Self-check: the core agrees with Entra's own error signals for "
            f"{summary.self_check_agreement:.1%} of users "
            f"({summary.self_check_disagreements} disagreement(s))."
        )
    sections = [
        Section(
            "Findings by issue",
            table=Table(
                ("Issue", "Count"),
                tuple(
                    (code, str(n))
                    for code, n in sorted(
                        summary.findings_by_code.items(), key=lambda kv: (-kv[1], kv[0])
                    )
                ),
            ),
        ),
    ]
    if summary.top_groups_by_errors:
        sections.append(
            Section(
                "Top groups by errors",
                table=Table(
                    ("Group", "Users in error"),
                    tuple((g.group_name, str(g.errors)) for g in summary.top_groups_by_errors),
                ),
            )
        )
    if summary.seat_forecast:
        sections.append(
            Section(
                "Seat forecast",
                table=Table(
                    ("Product", "Demand", "Prepaid", "Consumed", "Short"),
                    tuple(
                        (
                            f.product_name or f.sku_part_number,
                            str(f.demand),
                            str(f.prepaid_enabled),
                            str(f.consumed),
                            str(f.shortfall),
                        )
                        for f in summary.seat_forecast
                    ),
                ),
            )
        )
    if summary.drift:
        sections.append(
            Section(
                "Configuration drift",
                table=Table(
                    ("Change", "Subject", "Detail", "By"),
                    tuple(
                        (d.kind, d.subject, d.detail, d.actor or "unknown") for d in summary.drift
                    ),
                ),
            )
        )
    outcomes = summary.reprocess_outcomes
    sections.append(
        Section(
            "What License Guard did",
            paragraphs=(
                "Reprocesses by outcome: "
                + (", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())) or "none")
                + ".",
            ),
        )
    )
    if summary.report_blobs:
        sections.append(
            Section(
                "Reports",
                paragraphs=(
                    "The night's reports are kept in the service's storage (not attached): "
                    + ", ".join(summary.report_blobs)
                    + ".",
                ),
            )
        )
    return render(
        MailView(
            "License Guard nightly summary", summary.tenant_name, tuple(lead), tuple(sections)
        ),
        mail_id=mail_id,
        kind="nightly",
        subject=subject,
    )
